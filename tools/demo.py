#!/usr/bin/env python
"""The quickstart behind ``make demo``: real training and evaluation on toy data, then the
trained models on real photos.

1. MMDetection / MMSegmentation: toy COCO -> RetinaNet-LSNet-T -> bbox mAP and
   visualised predictions; toy ADE20K -> Semantic FPN -> mIoU.
2. Ultralytics: a LOLViT-S YOLO detector and an A-YOLOM LOLViT-S multi-task
   model on toy BDD100K-style data.
3. Every trained model also draws its predictions on the real photos and BDD100K
   frames of ../shared/realdata (boxes, masks, drivable area and lane lines), next to
   the toy drawings. Trained on toy shapes only, they predict real photos poorly.
4. A short backbone benchmark (params, GMACs, CPU latency).

Everything is written under ``--work-dir`` (default ``work_dirs/demo``).
"""
import argparse
import os
import time
from pathlib import Path

PARTS = ("mm", "yolo", "benchmark")
POOR = ("note: the drawings on real photos come from models trained for minutes on toy shapes, "
        "so their predictions there are poor (missed or wrong boxes and masks); they show that "
        "real JPEG/PNG files are read, predicted and drawn correctly, not accuracy.")


def _say(line):
    print(f"[demo] {line}", flush=True)


def _print_vis(vis):
    for name, folder in vis.items():
        n = len(list(Path(folder).glob("*.*")))
        print(f"  {name:24s} {n:3d} drawings in {folder}")


def _print_mm(f):
    print("[demo] RetinaNet + LSNet-T on toy COCO: bbox mAP {bbox_mAP:.3f}, mAP@0.5 {bbox_mAP_50:.3f}"
          " ({det_seconds:.0f} s)".format(**f))
    print("[demo] Semantic FPN + LSNet-T on toy ADE20K: mIoU {mIoU:.2f}, aAcc {aAcc:.2f}"
          " ({seg_seconds:.0f} s)".format(**f))
    _print_vis(f["vis"])


def _print_yolo(res, imgsz=128):
    print("=== LOLViT-S + YOLOv8n head, toy BDD100K detection ===")
    for k, v in res["detector"].items():
        print(f"  {k:28s} {v:.4f}")
    print("=== A-YOLOM-n with LOLViT-S, toy BDD100K (detection + drivable + lane) ===")
    for k, v in res["multitask"].items():
        print(f"  {k:28s} {v:.4f}")
    print(f"  FPS (CPU, {imgsz}x{imgsz})       batch 1: {res['fps'][1]:.1f}  batch 32: {res['fps'][32]:.1f}")
    from lsdense.yolo.demo import PAPER_TARGETS

    print("=== LOLViT YOLO detectors vs the paper ===")
    for name, m in res["sizes"].items():
        t = PAPER_TARGETS[name]
        print(f"  {name}: {m['gflops_640']:.1f} GFLOPs @640 (paper {t['gflops_640']}), "
              f"{m['params_voc_m']:.2f} M params VOC (paper {t['params_voc_m']})")
    print("=== drawn predictions (drivable area green, lane lines red) ===")
    _print_vis(res["vis"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", type=Path, default=Path("work_dirs/demo"))
    p.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    args = p.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    # Ultralytics offline, its settings file under the work dir (read at its first import)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(args.work_dir.resolve() / "ultralytics-config"))
    t0 = time.time()
    real_drawn = False
    if "mm" in args.only:
        from lsdense.mm.demo import run as run_mm
        print("=== [1/3] MMDetection + MMSegmentation on toy COCO / ADE20K, then real photos ===",
              flush=True)
        figures = run_mm(args.work_dir / "mm", progress=_say)
        _print_mm(figures)
        real_drawn |= any("real" in k for k in figures["vis"])
    if "yolo" in args.only:
        from lsdense.yolo.demo import run as run_yolo
        print("=== [2/3] Ultralytics: LOLViT-S YOLO + A-YOLOM on toy BDD100K, then real photos "
              "and BDD100K frames ===", flush=True)
        res = run_yolo(args.work_dir / "yolo", progress=_say)
        _print_yolo(res)
        real_drawn |= any("real" in k for k in res["vis"])
    if "benchmark" in args.only:
        from benchmark import benchmark, format_table  # tools/benchmark.py
        print("=== [3/3] Backbone benchmark (CPU, batch 1, 2 threads) ===", flush=True)
        res = benchmark(["lsnet_t", "lolvit_s", "lisanet_s"], [224], repeats=5, warmup=2)
        print(format_table(res))
    if real_drawn:
        print(POOR)
    elif {"mm", "yolo"} & set(args.only):
        print("note: ../shared/realdata not found (set LSDENSE_REALDATA): no real photos drawn.")
    print(f"demo finished in {time.time() - t0:.0f} s; outputs in {args.work_dir}")


if __name__ == "__main__":
    main()
