"""Convert a checkpoint of the official A-YOLOM code (JiayuanWang-JW/YOLOv8-multi-task) for stock Ultralytics.

    python tools/convert_ayolom.py yolopm-n/weights/best.pt checkpoints/ayolom-n.pt
    python -c "from lsdense.yolo import AYOLOM; AYOLOM('checkpoints/ayolom-n.pt').predict('road.jpg')"

The official file pickles the fork's own classes; it is read with a restricted
unpickler (stand-ins for the fork's classes, nothing of the fork is run) and its
tensors are mapped one to one onto ``configs/yolo/ayolom-{n,s}.yaml``
(see ``lsdense/yolo/multitask/convert.py``). Exit status 1 with a message when
the file is not an official A-YOLOM checkpoint.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Official A-YOLOM checkpoint -> lsdense AYOLOM .pt")
    p.add_argument("src", help="checkpoint saved by the official A-YOLOM code (best.pt / last.pt)")
    p.add_argument("dst", help="output .pt for lsdense.yolo.AYOLOM")
    args = p.parse_args(argv)
    from lsdense.yolo.multitask.convert import convert_ayolom

    try:
        res = convert_ayolom(args.src, args.dst)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {res['dst']}: A-YOLOM-{res['scale']}, {res['loaded']} of {res['tensors']} official "
          f"tensors loaded")
    for k in res["dropped"]:
        print(f"  dropped (unused in the official forward pass): {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
