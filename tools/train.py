"""Train an MMDetection / MMSegmentation config, or an Ultralytics YAML, with lsdense backbones.

    python tools/train.py configs/retinanet_lsnet_t_coco.py [--work-dir DIR] [--resume [CKPT]]
           [--amp] [--auto-scale-lr] [--cfg-options KEY=VALUE ...] [--launcher pytorch]
    python tools/train.py configs/yolo/yolov8n-lsnet_t.yaml data=coco128.yaml epochs=1

A bundled config can be named from any directory (``retinanet_lsnet_t_coco.py``,
``quickstart/retinanet_lsnet_t_toycoco.py``: ``lsdense.cfg.mm_config``).
The framework comes from the config: ``default_scope`` 'mmdet' or 'mmseg' for
Python configs, Ultralytics for ``.yaml``. Multi-GPU: ``tools/dist_train.sh``.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional


def parse_args(argv: List[str]) -> argparse.Namespace:
    """Parse mm-style arguments (the same flags as mmdet's / mmseg's tools/train.py)."""
    from lsdense.mm.runner import add_runner_arguments

    p = argparse.ArgumentParser(description="Train an mmdet/mmseg config with lsdense backbones.")
    p.add_argument("config", help="config file (.py) or bundled config name, or an Ultralytics "
                                  "model .yaml")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                   help="resume from CKPT, or (no value) from the latest checkpoint in the work dir")
    p.add_argument("--amp", action="store_true", help="mixed-precision training (GPU)")
    p.add_argument("--auto-scale-lr", action="store_true",
                   help="scale the lr by total batch size / auto_scale_lr.base_batch_size")
    add_runner_arguments(p)
    args = p.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 a reported config/data error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith((".yaml", ".yml")):
        from lsdense.yolo.train import prepare, train_prepared

        try:  # the YAML, the overrides, the model YAML and the data: all problems, before building
            job = prepare(argv[0], argv[1:])
        except ValueError as err:
            for line in str(err).strip().splitlines():
                print(f"error: {line}", file=sys.stderr)
            return 1
        train_prepared(*job)
        return 0
    args = parse_args(argv)
    from lsdense.mm.runner import REPORTED_ERRORS, train

    try:
        train(args.config, work_dir=args.work_dir, resume=args.resume, amp=args.amp,
              auto_scale_lr=args.auto_scale_lr, cfg_options=args.cfg_options,
              launcher=args.launcher)
    except REPORTED_ERRORS as err:  # one line per problem, all of them
        for line in str(err).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
