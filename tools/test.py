"""Evaluate a checkpoint with an MMDetection / MMSegmentation config's test set and metric.

    python tools/test.py configs/retinanet_lsnet_t_coco.py work_dirs/.../epoch_12.pth
           [--work-dir DIR] [--show-dir DIR] [--cfg-options KEY=VALUE ...] [--launcher pytorch]

``--show-dir`` saves every test image with its predictions drawn (PNG).
Multi-GPU: ``tools/dist_test.sh``.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional


def parse_args(argv: List[str]) -> argparse.Namespace:
    """Parse mm-style arguments (the same flags as mmdet's / mmseg's tools/test.py)."""
    from lsdense.mm.runner import add_runner_arguments

    p = argparse.ArgumentParser(description="Test a checkpoint of an mmdet/mmseg config.")
    p.add_argument("config", help="config file or bundled config name")
    p.add_argument("checkpoint", help="checkpoint file")
    p.add_argument("--show-dir", help="save visualised predictions (PNG) in this folder")
    add_runner_arguments(p, work_dir_help="where the test log goes")
    args = p.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 a reported config/data error)."""
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    from lsdense.mm.runner import REPORTED_ERRORS, test

    try:
        test(args.config, args.checkpoint, work_dir=args.work_dir, show_dir=args.show_dir,
             cfg_options=args.cfg_options, launcher=args.launcher)
    except REPORTED_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
