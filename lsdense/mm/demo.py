"""The mm quickstart: toy data -> train -> evaluate -> visualise, for detection and segmentation.

``run(work_dir)``:

1. writes the toy COCO and ADE20K sets (``lsdense.toydata``) under ``work_dir/data``;
2. trains RetinaNet + LSNet-T (``configs/quickstart/retinanet_lsnet_t_toycoco.py``) with
   mmengine's Runner (progress in its log), evaluates it with ``CocoMetric`` through
   :func:`lsdense.mm.runner.test`, and draws predictions on validation images (PNG) with
   mmdet's own inference API and visualizer;
3. does the same for Semantic FPN + LSNet-T (``fpn_lsnet_t_toyade20k.py``, mIoU);
4. prints and returns the figures.

The configs live in the repository (``configs/quickstart``); run from a checkout.
"""
from __future__ import annotations

import glob
import os.path as osp
import time
from pathlib import Path
from typing import Dict, Optional, Union

__all__ = ["run", "toy_data_options", "QUICKSTART"]

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = {
    "det": REPO / "configs" / "quickstart" / "retinanet_lsnet_t_toycoco.py",
    "seg": REPO / "configs" / "quickstart" / "fpn_lsnet_t_toyade20k.py",
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


def _draw_det(config: Path, checkpoint: str, images, out_dir: Path, opts: dict) -> None:
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS
    from mmengine.config import Config
    import mmcv

    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(opts)
    model = init_detector(cfg, checkpoint, device="cpu")
    vis = VISUALIZERS.build(dict(type="DetLocalVisualizer", name="lsdense_demo_det"))
    vis.dataset_meta = model.dataset_meta
    for path in images:
        result = inference_detector(model, path)
        img = mmcv.imread(path, channel_order="rgb")
        vis.add_datasample(Path(path).stem, img, data_sample=result, draw_gt=False,
                           pred_score_thr=0.3, out_file=str(out_dir / f"{Path(path).stem}.png"))


def _draw_seg(config: Path, checkpoint: str, images, out_dir: Path, opts: dict) -> None:
    from mmengine.config import Config
    from mmseg.apis import inference_model, init_model, show_result_pyplot

    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(opts)
    model = init_model(cfg, checkpoint, device="cpu")
    for path in images:
        result = inference_model(model, path)
        show_result_pyplot(model, path, result, show=False, draw_gt=False, with_labels=False,
                           out_file=str(out_dir / f"{Path(path).stem}.png"))


def run(work_dir: Union[str, Path] = "work_dirs/demo", num_vis: int = 6) -> Dict[str, float]:
    """Run the quickstart; return ``bbox_mAP``, ``bbox_mAP_50``, ``mIoU``, ``aAcc`` and seconds.

    Args:
        work_dir: everything (toy data, logs, checkpoints, PNGs) goes here.
        num_vis: validation images drawn with predictions, per task.
    """
    from lsdense.toydata.ade import make_ade20k
    from lsdense.toydata.coco import make_coco

    from .runner import test, train

    for cfg in QUICKSTART.values():
        if not cfg.is_file():
            raise FileNotFoundError(f"{cfg} not found: run the demo from a repository checkout.")
    work = Path(work_dir).resolve()
    t0 = time.time()
    figures: Dict[str, float] = {}
    jobs = (("det", "coco", make_coco, "coco/bbox_mAP", "val2017/*.jpg"),
            ("seg", "ade20k", make_ade20k, "mIoU", "images/validation/*.jpg"))
    for task, kind, make, key, val_glob in jobs:
        t_task = time.time()
        data_root = work / "data" / kind
        if not (data_root / ".complete").is_file():
            make(data_root)
            (data_root / ".complete").write_text("ok\n")
        opts = toy_data_options(kind, data_root)
        run_dir = work / task
        print(f"[demo] {task}: training {QUICKSTART[task].name} (log: {run_dir})", flush=True)
        train(QUICKSTART[task], work_dir=run_dir, cfg_options=opts)
        ckpt = _last_checkpoint(run_dir)
        metrics = test(QUICKSTART[task], ckpt, work_dir=run_dir, cfg_options=opts)
        vis_dir = run_dir / "vis"
        vis_dir.mkdir(parents=True, exist_ok=True)
        images = sorted(glob.glob(str(data_root / val_glob)))[:num_vis]
        (_draw_det if task == "det" else _draw_seg)(QUICKSTART[task], ckpt, images, vis_dir, opts)
        if task == "det":
            figures["bbox_mAP"] = metrics["coco/bbox_mAP"]
            figures["bbox_mAP_50"] = metrics["coco/bbox_mAP_50"]
        else:
            figures["mIoU"] = metrics["mIoU"]
            figures["aAcc"] = metrics["aAcc"]
        figures[f"{task}_seconds"] = round(time.time() - t_task, 1)
        figures[f"{task}_png"] = str(vis_dir)
    figures["seconds"] = round(time.time() - t0, 1)
    print("[demo] RetinaNet + LSNet-T on toy COCO: bbox mAP {bbox_mAP:.3f}, mAP@0.5 {bbox_mAP_50:.3f}"
          " ({det_seconds:.0f} s); predictions drawn in {det_png}".format(**figures))
    print("[demo] Semantic FPN + LSNet-T on toy ADE20K: mIoU {mIoU:.2f}, aAcc {aAcc:.2f}"
          " ({seg_seconds:.0f} s); predictions drawn in {seg_png}".format(**figures))
    print(f"[demo] total {figures['seconds']:.0f} s")
    return figures


if __name__ == "__main__":  # pragma: no cover
    run()
