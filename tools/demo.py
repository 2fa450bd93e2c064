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


def _mm_seconds(k_train):
    """Rough seconds of the mm part: per quickstart config, its iterations x one forward +
    backward of the whole model (``mode='tensor'``: backbone, neck, head) on a zero batch of
    the config's batch size and scale x ``k_train``."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from lsdense.mm.demo import QUICKSTART

    total = 0.0
    for cfg_file in QUICKSTART.values():
        cfg = Config.fromfile(str(cfg_file))
        init_default_scope(cfg.default_scope)
        registry = __import__(f"{cfg.default_scope}.registry", fromlist=["MODELS"])
        __import__(f"{cfg.default_scope}.utils", fromlist=["register_all_modules"]).register_all_modules()
        import lsdense.mm  # noqa: F401  (the lsdense backbones)
        model = registry.MODELS.build(cfg.model)
        batch = cfg.train_dataloader.batch_size
        w, h = cfg.img_scale
        step = _probe_mm(model, batch, h, w)
        loop = cfg.train_cfg
        images = {"mmdet": 400, "mmseg": 300}[cfg.default_scope]  # lsdense.toydata defaults
        iters = loop.get("max_iters") or loop["max_epochs"] * -(-images // batch)
        total += iters * step * k_train
    return total


def _probe_mm(model, batch, h, w, probe_batch=2):
    """Seconds of one training forward + backward at ``batch``: one untimed call at batch 1
    (one-time costs), then one timed call at ``probe_batch``, scaled linearly (an over-estimate:
    a call's fixed costs are scaled too, which stands in for data loading and the optimizer)."""
    import torch

    model.train()
    seconds = 0.0
    for b in (1, probe_batch):
        t0 = time.perf_counter()
        out = model(torch.zeros(b, 3, h, w), mode="tensor")
        flat = [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        sum(t.float().mean() for t in flat).backward()
        seconds = time.perf_counter() - t0
    return seconds * batch / probe_batch


def _estimate(parts, k_train=1.0):
    """Seconds per part, from a short probe of each model on this machine (printed up front)."""
    est = {}
    if "mm" in parts:
        est["mm"] = _mm_seconds(k_train)
    if "yolo" in parts:
        from lsdense.yolo.demo import estimate_seconds

        est["yolo"] = estimate_seconds(k_train)
    if "benchmark" in parts:  # timed: 2 warm-up + 5 calls per model and per peer
        import torch

        from lsdense.models import create_backbone

        x = torch.zeros(1, 3, 224, 224)
        one = 0.0
        for name in ("lsnet_t", "lolvit_s", "lisanet_s"):
            m = create_backbone(name).eval()
            t0 = time.perf_counter()
            with torch.no_grad():
                m(x)
            one += time.perf_counter() - t0
        est["benchmark"] = one * 7 * 3  # each model beside ~2 peers of similar cost
    return est


class _Clock:
    """The demo's running estimate: the up-front guess per part, corrected by the ratio of
    the time the finished parts took to their guess."""

    def __init__(self, est):
        self.est, self.t0, self.done, self.spent = est, time.time(), [], 0.0

    def left(self):
        ratio = self.spent / sum(self.est[p] for p in self.done) if self.done else 1.0
        return ratio * sum(v for k, v in self.est.items() if k not in self.done)

    def finish(self, part, seconds):
        self.done.append(part)
        self.spent += seconds
        from lsdense.yolo.demo import format_seconds

        _say(f"{part} part took {format_seconds(seconds)} (estimated {format_seconds(self.est[part])}); "
             f"about {format_seconds(self.left())} left")


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
    from lsdense.yolo.demo import format_seconds

    _say("estimating the run time (one training step of each model on this machine) ...")
    # the mm part also prints mmengine's own 'eta' in its log lines, the Ultralytics part one
    # line per epoch with the time left (beside Ultralytics' per-epoch progress bars)
    est = _estimate(args.only)
    clock = _Clock(est)
    _say(f"estimate: about {format_seconds(sum(est.values()))} in all ("
         + ", ".join(f"{k} {format_seconds(v)}" for k, v in est.items())
         + "; a rough guess from the probe, corrected after each part)")
    from realdata import demo_images  # tools/realdata.py (../shared/realdata, when present)

    t0 = time.time()
    real_drawn = False
    if "mm" in args.only:
        t_part = time.time()
        from lsdense.mm.demo import run as run_mm
        print("=== [1/3] MMDetection + MMSegmentation on toy COCO / ADE20K, then real photos ===",
              flush=True)
        figures = run_mm(args.work_dir / "mm", progress=_say, real_images=demo_images())
        _print_mm(figures)
        real_drawn |= any("real" in k for k in figures["vis"])
        clock.finish("mm", time.time() - t_part)
    if "yolo" in args.only:
        t_part = time.time()
        from lsdense.yolo.demo import run as run_yolo
        print("=== [2/3] Ultralytics: LOLViT-S YOLO + A-YOLOM on toy BDD100K, then real photos "
              "and BDD100K frames ===", flush=True)
        res = run_yolo(args.work_dir / "yolo", progress=_say, real_images=demo_images())
        _print_yolo(res)
        real_drawn |= any("real" in k for k in res["vis"])
        clock.finish("yolo", time.time() - t_part)
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
