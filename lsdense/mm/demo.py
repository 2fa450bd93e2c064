"""The mm quickstart: toy data -> train -> evaluate -> visualise, for detection and segmentation.

``run(work_dir)``:

1. writes the toy COCO and ADE20K sets (``lsdense.toydata``) under ``work_dir/data``;
2. trains RetinaNet + LSNet-T (``quickstart/retinanet_lsnet_t_toycoco.py``) with
   mmengine's Runner (progress in its log), evaluates it with ``CocoMetric`` through
   :func:`lsdense.mm.runner.test`, and draws predictions on validation images (PNG) with
   mmdet's own inference API and visualizer;
3. does the same for Semantic FPN + LSNet-T (``fpn_lsnet_t_toyade20k.py``, mIoU);
4. runs both toy-trained models on the real images given (``tools/demo.py`` passes the
   photos and BDD100K frames of ``../shared/realdata`` when present) and draws their predictions next to the toy ones
   (poor predictions: the models saw only toy shapes; the drawing shows real images read
   and drawn correctly);
5. returns the figures and the folders of drawings (``tools/demo.py`` prints them).

The configs are package data (``lsdense/cfg/mm/quickstart``, ``configs/quickstart`` in a
checkout), so the demo runs from any directory.
"""
from __future__ import annotations

import glob
import os.path as osp
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Union

from lsdense.cfg import MM_CFG_DIR

__all__ = ["run", "toy_data_options", "draw_det", "draw_seg", "QUICKSTART"]

QUICKSTART = {
    "det": MM_CFG_DIR / "quickstart" / "retinanet_lsnet_t_toycoco.py",
    "seg": MM_CFG_DIR / "quickstart" / "fpn_lsnet_t_toyade20k.py",
}


def toy_data_options(kind: str, data_root: Union[str, Path], workers: Optional[int] = None) -> dict:
    """``--cfg-options`` that point a quickstart config at toy data written elsewhere.

    Args:
        kind: ``'coco'`` or ``'ade20k'``.
        data_root: the folder ``tools/make_toy_data.py KIND --out`` wrote.
        workers: data-loader workers (0 runs loading in the main process).
    """
    root = str(data_root).rstrip("/") + "/"
    opts = {f"{split}_dataloader.dataset.data_root": root for split in ("train", "val", "test")}
    if kind == "coco":
        for split in ("val", "test"):
            opts[f"{split}_evaluator.ann_file"] = root + "annotations/instances_val2017.json"
    if workers is not None:
        for split in ("train", "val", "test"):
            opts[f"{split}_dataloader.num_workers"] = workers
            opts[f"{split}_dataloader.persistent_workers"] = workers > 0
    return opts


def _last_checkpoint(work_dir: Path) -> str:
    marker = work_dir / "last_checkpoint"
    if marker.is_file():
        return marker.read_text().strip()
    ckpts = sorted(glob.glob(str(work_dir / "*.pth")), key=osp.getmtime)
    if not ckpts:
        raise FileNotFoundError(f"No checkpoint in {work_dir}")
    return ckpts[-1]


def _visualizer_name(kind: str) -> str:
    # mmengine visualizers are per-name singletons: a fresh name per drawing session
    return f"lsdense_demo_{kind}_{time.time_ns()}"


def draw_det(config: Union[str, Path], checkpoint: str, images: Iterable[Union[str, Path]],
             out_dir: Union[str, Path], cfg_options: Optional[dict] = None,
             score_thr: float = 0.3) -> List[Path]:
    """Draw a detector's predictions (boxes; masks for Mask R-CNN) on images, one PNG each.

    Inference and drawing both decode with mmcv (cv2): EXIF orientation applied, grayscale
    and PNG images read as 3-channel, so boxes land on the image as displayed.

    Args:
        config, checkpoint: the trained detector.
        images: image files (JPEG, PNG, ...).
        out_dir: where ``<stem>.png`` files go.
        cfg_options: merged into the config (as ``--cfg-options``).
        score_thr: detections below this score are not drawn.

    Returns:
        The written files, in the order of ``images``.
    """
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS
    from mmengine.config import Config
    import mmcv

    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(cfg_options or {})
    model = init_detector(cfg, checkpoint, device="cpu")
    vis = VISUALIZERS.build(dict(type="DetLocalVisualizer", name=_visualizer_name("det")))
    vis.dataset_meta = model.dataset_meta
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in map(str, images):
        result = inference_detector(model, path)
        img = mmcv.imread(path, channel_order="rgb")
        dst = out / f"{Path(path).stem}.png"
        vis.add_datasample(Path(path).stem, img, data_sample=result, draw_gt=False,
                           pred_score_thr=score_thr, out_file=str(dst))
        written.append(dst)
    return written


def draw_seg(config: Union[str, Path], checkpoint: str, images: Iterable[Union[str, Path]],
             out_dir: Union[str, Path], cfg_options: Optional[dict] = None) -> List[Path]:
    """Draw a segmentor's predicted class map on images (mmseg's visualizer), one PNG each.

    Returns:
        The written files, in the order of ``images``.
    """
    from mmengine.config import Config
    from mmseg.apis import inference_model, init_model, show_result_pyplot

    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(cfg_options or {})
    model = init_model(cfg, checkpoint, device="cpu")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in map(str, images):
        result = inference_model(model, path)
        dst = out / f"{Path(path).stem}.png"
        show_result_pyplot(model, path, result, show=False, draw_gt=False, with_labels=False,
                           out_file=str(dst))
        written.append(dst)
    return written


def run(work_dir: Union[str, Path] = "work_dirs/demo", num_vis: int = 6,
        progress: Optional[Callable[[str], None]] = None,
        real_images: Optional[Dict[str, List[Path]]] = None) -> Dict[str, object]:
    """Run the quickstart; return figures and the folders of drawn predictions.

    Args:
        work_dir: everything (toy data, logs, checkpoints, PNGs) goes here.
        num_vis: toy validation images drawn with predictions, per task.
        progress: called with a line before each long step (``print`` in ``tools/demo.py``).
        real_images: ``{set name: image paths}`` drawn with both models' predictions too
            (``tools/demo.py`` passes the photos and BDD100K frames of ``../shared/realdata``).

    Returns:
        ``bbox_mAP``, ``bbox_mAP_50``, ``mIoU``, ``aAcc``, ``det_seconds``, ``seg_seconds``,
        ``seconds``; ``vis``: {name: folder}, ``det_toy``/``seg_toy`` and, with ``real_images``,
        ``det_real_photos``, ``det_real_bdd100k``, ``seg_real_photos``, ``seg_real_bdd100k``.
    """
    from lsdense.toydata.ade import make_ade20k
    from lsdense.toydata.coco import make_coco

    from .runner import test, train

    say = progress or (lambda line: None)
    for cfg in QUICKSTART.values():
        if not cfg.is_file():
            raise FileNotFoundError(f"{cfg} not found: the lsdense installation lacks its package "
                                    f"data; reinstall it (pip install lsdense[mmdet,mmseg]).")
    work = Path(work_dir).resolve()
    t0 = time.time()
    figures: Dict[str, object] = {"vis": {}}
    real = real_images or {}
    jobs = (("det", "coco", make_coco, "val2017/*.jpg"),
            ("seg", "ade20k", make_ade20k, "images/validation/*.jpg"))
    for task, kind, make, val_glob in jobs:
        t_task = time.time()
        data_root = work / "data" / kind
        if not (data_root / ".complete").is_file():
            make(data_root)
            (data_root / ".complete").write_text("ok\n")
        opts = toy_data_options(kind, data_root)
        run_dir = work / task
        say(f"{task}: training {QUICKSTART[task].name} (log: {run_dir})")
        train(QUICKSTART[task], work_dir=run_dir, cfg_options=opts)
        ckpt = _last_checkpoint(run_dir)
        metrics = test(QUICKSTART[task], ckpt, work_dir=run_dir, cfg_options=opts)
        draw = draw_det if task == "det" else draw_seg
        sets = {"toy": sorted(glob.glob(str(data_root / val_glob)))[:num_vis], **real}
        for name, images in sets.items():
            folder = run_dir / ("vis" if name == "toy" else f"vis_real_{name}")
            say(f"{task}: drawing predictions on {len(images)} {name} images -> {folder}")
            draw(QUICKSTART[task], ckpt, images, folder, opts)
            figures["vis"][f"{task}_{'toy' if name == 'toy' else 'real_' + name}"] = folder
        if task == "det":
            figures["bbox_mAP"] = metrics["coco/bbox_mAP"]
            figures["bbox_mAP_50"] = metrics["coco/bbox_mAP_50"]
        else:
            figures["mIoU"] = metrics["mIoU"]
            figures["aAcc"] = metrics["aAcc"]
        figures[f"{task}_seconds"] = round(time.time() - t_task, 1)
    figures["seconds"] = round(time.time() - t0, 1)
    return figures
