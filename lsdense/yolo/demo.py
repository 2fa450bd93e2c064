"""Ultralytics demo: a LOLViT-S YOLO detector and an A-YOLOM LOLViT-S multi-task model on toy BDD100K.

``run(work_dir)`` writes toy road scenes, trains both models briefly on CPU,
prints their metrics, the A-YOLOM FPS at batch 1 and 32, and the LOLViT-S/X
detector sizes against the LOLViT paper's targets. Toy data and a few epochs:
the numbers show the pipeline works, not the papers' accuracy.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Dict, Union

__all__ = ["run", "detector_sizes", "PAPER_TARGETS"]


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
_CFG = Path(__file__).resolve().parents[2] / "configs" / "yolo"


def detector_sizes(head: str = "yolov8n") -> Dict[str, Dict[str, float]]:
    """Measured GFLOPs at 640 (COCO, 80 classes) and parameters (VOC, 20 classes) per LOLViT variant."""
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.torch_utils import get_flops

    out = {}
    for name in PAPER_TARGETS:
        cfg = str(_CFG / f"{head}-{name}.yaml")
        coco = DetectionModel(cfg, nc=80, verbose=False)
        voc = DetectionModel(cfg, nc=20, verbose=False)
        out[name] = {"gflops_640": round(get_flops(coco, 640), 2),
                     "params_voc_m": round(sum(p.numel() for p in voc.parameters()) / 1e6, 3)}
    return out


def run(work_dir: Union[str, Path, None] = None, epochs: int = 20, imgsz: int = 128) -> dict:
    """Train both demo models on toy data and print their metrics; returns them as a dict."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    work = Path(work_dir or tempfile.mkdtemp(prefix="lsdense-yolo-demo-"))
    os.environ.setdefault("YOLO_CONFIG_DIR", str(work / "ultralytics-config"))

    import lsdense.yolo  # noqa: F401
    from lsdense.toydata.bdd import make_bdd100k
    from lsdense.yolo import AYOLOM
    from lsdense.yolo.speed import measure_fps
    from ultralytics import YOLO

    data = make_bdd100k(work / "bdd100k", num_train=32, num_val=8, seed=0, size=(96, 160))
    # short CPU runs: no LR warm-up, no mosaic (toy scenes are already small and centred)
    common = dict(epochs=epochs, imgsz=imgsz, batch=8, workers=0, device="cpu", amp=False,
                  plots=False, exist_ok=True, project=str(work / "runs"), verbose=False,
                  warmup_epochs=0, mosaic=0.0, close_mosaic=0, optimizer="AdamW", lr0=0.002)
    det = YOLO(str(_CFG / "yolov8n-lolvit_s.yaml"))
    det.train(data=str(data["det_yaml"]), name="lolvit_s-yolov8n", **common)
    mt = AYOLOM(str(_CFG / "ayolom-n-lolvit_s.yaml"))
    mt.train(data=str(data["multitask_yaml"]), name="ayolom-n-lolvit_s", **common)
    res = {"detector": det.trainer.metrics, "multitask": mt.trainer.metrics,
           "fps": {bs: measure_fps(mt.model, imgsz=imgsz, batch=bs, warmup=1, iters=3)
                   for bs in (1, 32)},
           "sizes": detector_sizes()}

    print("\n=== LOLViT-S + YOLOv8n head, toy BDD100K detection ===")
    for k, v in res["detector"].items():
        print(f"  {k:28s} {v:.4f}")
    print("=== A-YOLOM-n with LOLViT-S, toy BDD100K (detection + drivable + lane) ===")
    for k, v in res["multitask"].items():
        print(f"  {k:28s} {v:.4f}")
    print(f"  FPS (CPU, {imgsz}x{imgsz})       batch 1: {res['fps'][1]:.1f}  batch 32: {res['fps'][32]:.1f}")
    print("=== LOLViT YOLO detectors vs the paper ===")
    for name, m in res["sizes"].items():
        t = PAPER_TARGETS[name]
        print(f"  {name}: {m['gflops_640']:.1f} GFLOPs @640 (paper {t['gflops_640']}), "
              f"{m['params_voc_m']:.2f} M params VOC (paper {t['params_voc_m']})")
    print(f"outputs in {work}")
    return res


if __name__ == "__main__":  # pragma: no cover
    run()
