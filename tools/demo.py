#!/usr/bin/env python
"""The quickstart behind ``make demo``: real training and evaluation on toy data.

1. MMDetection / MMSegmentation: toy COCO -> RetinaNet-LSNet-T -> bbox mAP and
   visualised predictions; toy ADE20K -> Semantic FPN -> mIoU.
2. Ultralytics: a LOLViT-S YOLO detector and an A-YOLOM LOLViT-S multi-task
   model on toy BDD100K-style data.
3. A short backbone benchmark (params, GMACs, CPU latency).

Everything is written under ``--work-dir`` (default ``work_dirs/demo``).
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PARTS = ("mm", "yolo", "benchmark")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", type=Path, default=Path("work_dirs/demo"))
    p.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    args = p.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    summary = {}
    t0 = time.time()
    if "mm" in args.only:
        from lsdense.mm.demo import run as run_mm
        print("=== [1/3] MMDetection + MMSegmentation on toy COCO / ADE20K ===", flush=True)
        summary["mm"] = run_mm(args.work_dir / "mm")
    if "yolo" in args.only:
        from lsdense.yolo.demo import run as run_yolo
        print("=== [2/3] Ultralytics: LOLViT-S YOLO + A-YOLOM on toy BDD100K ===", flush=True)
        summary["yolo"] = run_yolo(args.work_dir / "yolo")
    if "benchmark" in args.only:
        from lsdense.benchmark import benchmark, format_table
        print("=== [3/3] Backbone benchmark (CPU, batch 1, 2 threads) ===", flush=True)
        res = benchmark(["lsnet_t", "lolvit_s", "lisanet_s"], [224], repeats=5, warmup=2)
        print(format_table(res))
    print(f"demo finished in {time.time() - t0:.0f} s; outputs in {args.work_dir}")
    for part, figures in summary.items():
        print(f"  {part}: {figures}")


if __name__ == "__main__":
    main()
