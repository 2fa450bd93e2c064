"""Ultralytics demo: a LOLViT-S YOLO detector and an A-YOLOM LOLViT-S multi-task model on toy
BDD100K, then both run on real photos and real BDD100K frames.

``run(work_dir)`` writes toy road scenes, trains both models briefly on CPU, measures their
metrics, the A-YOLOM FPS at batch 1 and 32 and the LOLViT-S/X detector sizes against the
LOLViT paper's targets, and draws predictions (boxes; drivable area and lane lines) on the
toy validation scenes and on the real images it is given (``tools/demo.py`` passes those of
``../shared/realdata``: ``photos/`` and ``bdd100k_real/``). Toy data and a few epochs: the numbers show the pipeline works, not the
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
           "estimate_seconds", "epoch_eta", "fwd_bwd_seconds", "format_seconds",
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


DEMO_EPOCHS, DEMO_IMGSZ, DEMO_BATCH, DEMO_TRAIN_IMAGES = 20, 128, 8, 32


def format_seconds(s: float) -> str:
    """``75`` -> ``'1 min 15 s'``; ``4000`` -> ``'1 h 7 min'``."""
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s"


def epoch_eta(say: Callable[[str], None], name: str) -> Callable:
    """Ultralytics ``on_train_epoch_end`` callback: one line per epoch with the time left in the
    training, from the mean epoch time so far (Ultralytics' own bars show one epoch at a time)."""
    import time

    start = {}

    def callback(trainer) -> None:
        now = time.time()
        start.setdefault("t", getattr(trainer, "train_time_start", now))
        done, total = trainer.epoch + 1, trainer.epochs
        left = (now - start["t"]) / done * (total - done)
        say(f"{name}: epoch {done}/{total}, about {format_seconds(left)} left in this training")
    return callback


def fwd_bwd_seconds(model, x, batch: Optional[int] = None) -> float:
    """Seconds of one forward + backward of ``model`` (train mode) at ``batch`` images: one
    untimed call on ``x[:1]`` (one-time costs), then one timed call on ``x`` scaled linearly by
    ``batch / len(x)`` (an over-estimate: fixed costs are scaled too, standing in for data
    loading and the optimizer step). The probe behind the demo's up-front estimate."""
    import time

    import torch

    def flat(o):
        if isinstance(o, torch.Tensor):
            return [o]
        if isinstance(o, dict):
            o = list(o.values())
        return [t for v in (o if isinstance(o, (list, tuple)) else []) for t in flat(v)]

    model.train()
    sum(t.float().mean() for t in flat(model(x[:1]))).backward()  # untimed: one-time costs
    t0 = time.perf_counter()
    sum(t.float().mean() for t in flat(model(x))).backward()
    seconds = time.perf_counter() - t0
    model.zero_grad(set_to_none=True)
    return seconds * (batch or len(x)) / len(x)


def estimate_seconds(k_train: float = 1.0) -> float:
    """Rough seconds of :func:`run` on this machine, from one forward + backward of each model
    at the demo's size (batch 2, scaled to the demo's batch; :func:`fwd_bwd_seconds`):
    iterations x probe x ``k_train``. Rough: not calibrated against full runs.
    ``tools/demo.py`` prints it up front and corrects it as steps finish."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from .multitask import MultiTaskModel

    x = torch.zeros(2, 3, DEMO_IMGSZ, DEMO_IMGSZ)
    iters = DEMO_EPOCHS * -(-DEMO_TRAIN_IMAGES // DEMO_BATCH)
    det = fwd_bwd_seconds(DetectionModel(str(_CFG / "yolov8n-lolvit_s.yaml"), nc=3, verbose=False),
                          x, DEMO_BATCH)
    mt = fwd_bwd_seconds(MultiTaskModel(str(_CFG / "ayolom-n-lolvit_s.yaml"), nc=1, verbose=False),
                         x, DEMO_BATCH)
    # + FPS (4 x batch 1 + 4 x batch 32 forwards, ~ 17 batches of 8) and drawing (~40 images at 320 px)
    return iters * (det + mt) * k_train + 17 * mt + 40 * mt


def run(work_dir: Union[PathLike, None] = None, epochs: int = DEMO_EPOCHS, imgsz: int = DEMO_IMGSZ,
        progress: Optional[Callable[[str], None]] = None,
        real_images: Optional[Dict[str, List[Path]]] = None) -> dict:
    """Train both demo models on toy data, draw their predictions; return metrics and paths.

    Args:
        real_images: ``{'photos': [...], 'bdd100k': [...]}`` real images to draw predictions on
            too (``tools/demo.py`` passes those of ``../shared/realdata``).

    Returns:
        ``{'detector', 'multitask'}`` metrics, ``'fps'`` {batch: images/s}, ``'sizes'``
        (:func:`detector_sizes`), ``'vis'`` {name: folder of drawings}: ``toy_detector``,
        ``toy_multitask``, and with ``real_images`` ``real_photos_detector``,
        ``real_photos_multitask``, ``real_bdd100k_multitask``; and ``'work_dir'``.
    """
    say = progress or (lambda s: None)
    work = Path(work_dir or tempfile.mkdtemp(prefix="lsdense-yolo-demo-"))

    from ultralytics import YOLO

    from lsdense.toydata.bdd import make_bdd100k

    from .multitask import AYOLOM
    from .speed import measure_fps

    data = make_bdd100k(work / "bdd100k", num_train=DEMO_TRAIN_IMAGES, num_val=8, seed=0, size=(96, 160))
    # short CPU runs: no LR warm-up, no mosaic (toy scenes are already small and centred)
    common = dict(epochs=epochs, imgsz=imgsz, batch=DEMO_BATCH, workers=0, device="cpu", amp=False,
                  plots=False, exist_ok=True, project=str(work / "runs"), verbose=False,
                  warmup_epochs=0, mosaic=0.0, close_mosaic=0, optimizer="AdamW", lr0=0.002)
    say(f"training LOLViT-S + YOLOv8n head on toy BDD100K ({epochs} epochs)")
    det = YOLO(str(_CFG / "yolov8n-lolvit_s.yaml"))
    det.add_callback("on_train_epoch_end", epoch_eta(say, "LOLViT-S YOLO"))
    det.train(data=str(data["det_yaml"]), name="lolvit_s-yolov8n", **common)
    say(f"training A-YOLOM-n with LOLViT-S on toy BDD100K ({epochs} epochs)")
    mt = AYOLOM(str(_CFG / "ayolom-n-lolvit_s.yaml"))
    mt.add_callback("on_train_epoch_end", epoch_eta(say, "A-YOLOM"))
    mt.train(data=str(data["multitask_yaml"]), name="ayolom-n-lolvit_s", **common)
    res = {"detector": det.trainer.metrics, "multitask": mt.trainer.metrics,
           "fps": {bs: measure_fps(mt.model, imgsz=imgsz, batch=bs, warmup=1, iters=3)
                   for bs in (1, 32)},
           "sizes": detector_sizes(), "vis": {}, "work_dir": work}

    say("drawing predictions on toy and real images")  # ~40 images
    toy_val = sorted((Path(data["root"]) / "images/100k/val").glob("*.jpg"))[:6]
    vis = work / "vis"
    res["vis"]["toy_detector"] = vis / "toy_detector"
    predict_to_files(det, toy_val, res["vis"]["toy_detector"], imgsz=imgsz)
    res["vis"]["toy_multitask"] = vis / "toy_multitask"
    predict_to_files(mt, toy_val, res["vis"]["toy_multitask"], imgsz=imgsz)
    real = real_images or {}
    # real images at a larger size than the toy scenes: 1280x720 frames at 128 px hold nothing
    for key, model, images in (("real_photos_detector", det, real.get("photos")),
                               ("real_photos_multitask", mt, real.get("photos")),
                               ("real_bdd100k_multitask", mt, real.get("bdd100k"))):
        if images:
            res["vis"][key] = vis / key
            predict_to_files(model, images, res["vis"][key], imgsz=max(imgsz, 320))
    return res
