"""Convert an official LSNet RetinaNet / Mask R-CNN / Semantic FPN checkpoint for our configs.

    python tools/convert_official.py lsnet_t_retinanet.pth configs/retinanet_lsnet_t_coco.py \
        checkpoints/retinanet_lsnet_t_coco.pth
    python tools/test.py configs/retinanet_lsnet_t_coco.py checkpoints/retinanet_lsnet_t_coco.pth

Keys that cannot be mapped, and model keys the file does not fill, are listed;
the exit status is 1 when any official key was left out (``--allow-unmapped``
to accept that).
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Official LSNet dense checkpoint -> lsdense config.")
    p.add_argument("src", help="official checkpoint (mmdet 2.x / mmseg 0.x layout)")
    p.add_argument("config", help="our config the checkpoint is for")
    p.add_argument("dst", help="output checkpoint")
    p.add_argument("--trusted", action="store_true",
                   help="unpickle src fully (only for files you trust)")
    p.add_argument("--allow-unmapped", action="store_true",
                   help="exit 0 even if some official keys could not be mapped")
    args = p.parse_args(argv)
    from lsdense.mm.convert import convert_official

    res = convert_official(args.src, args.config, args.dst, trusted=args.trusted)
    print(f"wrote {args.dst}: {len(res.state_dict)} tensors")
    for title, keys in (("dropped (rebuilt by the model)", res.dropped),
                        ("resized", res.resized),
                        ("NOT MAPPED", res.unmapped),
                        ("model keys not in the file (left at init)", res.missing)):
        if keys:
            print(f"{title}: {len(keys)}")
            for k in keys:
                print(f"  {k}")
    return 1 if res.unmapped and not args.allow_unmapped else 0


if __name__ == "__main__":
    sys.exit(main())
