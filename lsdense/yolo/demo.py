"""Ultralytics demo: a LOLViT-S YOLO detector and an A-YOLOM LOLViT-S multi-task model on toy
BDD100K, then both run on real photos and real BDD100K frames.

``run(work_dir)`` writes toy road scenes, trains both models briefly on CPU, measures their
metrics, the A-YOLOM FPS at batch 1 and 32 and the LOLViT-S/X detector sizes against the
LOLViT paper's targets, and draws predictions (boxes; drivable area and lane lines) on the
toy validation scenes and on the real images of ``../shared/realdata`` (``photos/`` and
``bdd100k_real/``). Toy data and a few epochs: the numbers show the pipeline works, not the
papers' accuracy, and predictions on real photos are poor. It returns numbers and paths;
``tools/demo.py`` prints them. It sets no environment variables: to keep Ultralytics offline
and its settings out of the home directory, set ``YOLO_OFFLINE=1``, ``YOLO_AUTOINSTALL=False``
and ``YOLO_CONFIG_DIR`` before the first Ultralytics import (``tools/demo.py`` does).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from lsdense.cfg import YOLO_CFG_DIR

__all__ = ["run", "detector_sizes", "draw_multitask", "predict_to_files", "PAPER_TARGETS",
           "DRIVABLE_BGR", "LANE_BGR"]


def _paper_targets() -> Dict[str, Dict[str, float]]:
    """LOLViT paper, YOLO head: COCO GFLOPs at 640 (Table 5), VOC parameters (Table 7),
    read from the variant registry (``Variant.published``)."""
    from lsdense.models import get_variant, list_backbones

    out = {}
    for name in list_backbones("lolvit"):
        dense = get_variant(name).published.dense
        out[name] = {"gflops_640": dense[f"{name}-coco"]["GFLOPs@640"].value,
                     "params_voc_m": dense[f"{name}-voc"]["params_m"].value}
    return out


PAPER_TARGETS = _paper_targets()
_CFG = YOLO_CFG_DIR  # the bundled YAMLs (lsdense/cfg/yolo), found from any directory
# overlay colours (BGR), as in A-YOLOM's and YOLOP's drawings: drivable area green, lanes red
DRIVABLE_BGR = (0, 200, 0)
LANE_BGR = (0, 0, 255)
PathLike = Union[str, Path]


def detector_sizes(head: str = "yolov8n") -> Dict[str, Dict[str, float]]:
    """Measured GFLOPs at 640 (COCO, 80 classes) and parameters (VOC, 20 classes) per LOLViT variant.

    GFLOPs come from :func:`lsdense.models.count_flops` on a real 640x640 input (2 FLOPs
    per multiply-add, as Ultralytics reports), not from Ultralytics' ``get_flops``, which
    probes a small image and extrapolates: that over-counts LOLViT about 2x
    (``docs/benchmarks.md``).
    """
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from lsdense.models import count_flops

    out = {}
    for name in PAPER_TARGETS:
        cfg = str(_CFG / f"{head}-{name}.yaml")
        coco = DetectionModel(cfg, nc=80, verbose=False)
        voc = DetectionModel(cfg, nc=20, verbose=False)
        gflops = count_flops(coco.eval(), torch.zeros(1, 3, 640, 640)) / 1e9
        out[name] = {"gflops_640": round(gflops, 2),
                     "params_voc_m": round(sum(p.numel() for p in voc.parameters()) / 1e6, 3)}
    return out


def draw_multitask(result, alpha: float = 0.5,
                   colors: Sequence[Tuple[int, int, int]] = (DRIVABLE_BGR, LANE_BGR)) -> np.ndarray:
    """Boxes (Ultralytics' ``Results.plot``) plus each segmentation mask blended in its colour.

    Only the mask's own pixels are tinted: ``Results.plot`` would blend a colour into every
    pixel of the ``semantic_mask`` (background included), hiding the road.

    Args:
        result: an A-YOLOM ``Results`` (``seg_masks``: {task: bool (H, W)}, in task order;
            later tasks drawn on top).
        alpha: mask opacity.
        colors: BGR colour per task.

    Returns:
        The drawn image, BGR uint8 (H, W, 3) at the original image size.
    """
    img = result.plot(masks=False).copy()  # boxes and labels, BGR
    for (task, mask), color in zip(result.seg_masks.items(), colors):
        m = mask.cpu().numpy().astype(bool) if hasattr(mask, "cpu") else np.asarray(mask, bool)
        if m.shape != img.shape[:2]:
            raise ValueError(f"{task} mask is {m.shape} but the image is {img.shape[:2]}.")
        img[m] = (img[m] * (1 - alpha) + np.array(color, np.float32) * alpha).round().astype(np.uint8)
    return img


def predict_to_files(model, images: Iterable[PathLike], out_dir: PathLike, imgsz: int = 320,
                     conf: float = 0.25) -> List[Path]:
    """Predict each image with an Ultralytics model and save the drawing as ``<stem>.jpg``.

    A-YOLOM models (results with ``seg_masks``) get :func:`draw_multitask`; detectors get
    ``Results.plot()``. Images are decoded by Ultralytics (cv2: EXIF orientation applied,
    grayscale and PNG read as 3-channel BGR), so the drawing has the displayed size.

    Returns:
        The written files, in the order of ``images``.
    """
    import cv2

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in images:
        r = model.predict(str(path), imgsz=imgsz, conf=conf, verbose=False)[0]
        img = draw_multitask(r) if getattr(r, "seg_masks", None) else r.plot()
        dst = out / f"{Path(path).stem}.jpg"
        if not cv2.imwrite(str(dst), img):
            raise OSError(f"Could not write {dst}.")
        written.append(dst)
    return written


def run(work_dir: Union[PathLike, None] = None, epochs: int = 20, imgsz: int = 128,
        progress: Optional[Callable[[str], None]] = None) -> dict:
    """Train both demo models on toy data, draw their predictions; return metrics and paths.

    Returns:
        ``{'detector', 'multitask'}`` metrics, ``'fps'`` {batch: images/s}, ``'sizes'``
        (:func:`detector_sizes`), ``'vis'`` {name: folder of drawings}: ``toy_detector``,
        ``toy_multitask``, and when the real data is there ``real_photos_detector``,
        ``real_photos_multitask``, ``real_bdd100k_multitask``; and ``'work_dir'``.
    """
    say = progress or (lambda s: None)
    work = Path(work_dir or tempfile.mkdtemp(prefix="lsdense-yolo-demo-"))

    from ultralytics import YOLO

    from lsdense.realdata import demo_images
    from lsdense.toydata.bdd import make_bdd100k

    from .multitask import AYOLOM
    from .speed import measure_fps

    data = make_bdd100k(work / "bdd100k", num_train=32, num_val=8, seed=0, size=(96, 160))
    # short CPU runs: no LR warm-up, no mosaic (toy scenes are already small and centred)
    common = dict(epochs=epochs, imgsz=imgsz, batch=8, workers=0, device="cpu", amp=False,
                  plots=False, exist_ok=True, project=str(work / "runs"), verbose=False,
                  warmup_epochs=0, mosaic=0.0, close_mosaic=0, optimizer="AdamW", lr0=0.002)
    say("training LOLViT-S + YOLOv8n head on toy BDD100K")
    det = YOLO(str(_CFG / "yolov8n-lolvit_s.yaml"))
    det.train(data=str(data["det_yaml"]), name="lolvit_s-yolov8n", **common)
    say("training A-YOLOM-n with LOLViT-S on toy BDD100K")
    mt = AYOLOM(str(_CFG / "ayolom-n-lolvit_s.yaml"))
    mt.train(data=str(data["multitask_yaml"]), name="ayolom-n-lolvit_s", **common)
    res = {"detector": det.trainer.metrics, "multitask": mt.trainer.metrics,
           "fps": {bs: measure_fps(mt.model, imgsz=imgsz, batch=bs, warmup=1, iters=3)
                   for bs in (1, 32)},
           "sizes": detector_sizes(), "vis": {}, "work_dir": work}

    say("drawing predictions on toy and real images")
    toy_val = sorted((Path(data["root"]) / "images/100k/val").glob("*.jpg"))[:6]
    vis = work / "vis"
    res["vis"]["toy_detector"] = vis / "toy_detector"
    predict_to_files(det, toy_val, res["vis"]["toy_detector"], imgsz=imgsz)
    res["vis"]["toy_multitask"] = vis / "toy_multitask"
    predict_to_files(mt, toy_val, res["vis"]["toy_multitask"], imgsz=imgsz)
    real = demo_images()
    # real images at a larger size than the toy scenes: 1280x720 frames at 128 px hold nothing
    for key, model, images in (("real_photos_detector", det, real.get("photos")),
                               ("real_photos_multitask", mt, real.get("photos")),
                               ("real_bdd100k_multitask", mt, real.get("bdd100k"))):
        if images:
            res["vis"][key] = vis / key
            predict_to_files(model, images, res["vis"][key], imgsz=max(imgsz, 320))
    return res
