"""Evaluate a checkpoint with an MMDetection / MMSegmentation config's test set and metric.

    python tools/test.py configs/retinanet_lsnet_t_coco.py work_dirs/.../epoch_12.pth
           [--work-dir DIR] [--out FILE] [--show] [--show-dir DIR] [--wait-time S] [--tta]
           [--cfg-options KEY=VALUE ...] [--launcher pytorch]

The flags and their meaning are those of mmdet's and mmseg's own ``tools/test.py``
(``--out``: mmdet a ``.pkl`` of predictions for ``confusion_matrix.py``, mmseg a folder of
predicted maps; ``--tta``: the config's ``tta_model`` / ``tta_pipeline``; ``--show-dir``
saves every test image with its predictions drawn). Before anything is built, the
pre-flight checks the config, its data and the checkpoint's fit to the model and reports
every problem at once, one line each. Multi-GPU: ``tools/dist_test.sh``.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the arguments of mmdet's / mmseg's tools/test.py (same flags, same defaults);
    ``argv`` defaults to ``sys.argv[1:]``."""
    from lsdense.mm.runner import add_runner_arguments

    p = argparse.ArgumentParser(description="Test a checkpoint of an mmdet/mmseg config.")
    p.add_argument("config", help="config file or bundled config name")
    p.add_argument("checkpoint", help="checkpoint file")
    p.add_argument("--out", help="mmdet: dump predictions to a .pkl file (for offline "
                                 "evaluation, confusion_matrix.py); mmseg: a folder for the "
                                 "predicted maps")
    p.add_argument("--show", action="store_true", help="show prediction results")
    p.add_argument("--show-dir", help="save visualised predictions (PNG) in this folder")
    p.add_argument("--wait-time", type=float, default=2, help="the interval of show (s)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation (the config's "
                                                      "tta_model and tta_pipeline)")
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
             cfg_options=args.cfg_options, launcher=args.launcher, out=args.out, tta=args.tta,
             show=args.show, wait_time=args.wait_time)
    except REPORTED_ERRORS as err:
        for line in str(err).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
