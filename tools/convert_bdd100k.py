#!/usr/bin/env python
"""Convert BDD100K detection labels (official JSON) to YOLO txt and write the dataset YAMLs.

    python tools/convert_bdd100k.py /data/bdd100k --classes ayolom
    python tools/convert_bdd100k.py /data/bdd100k --classes "vehicle=car,bus,truck,train;person=pedestrian"

Reads ``labels/det_20/det_{train,val}.json`` (or ``--json-dir``), writes
``labels/100k/{train,val}/*.txt`` next to ``images/100k/{train,val}``, and
``bdd100k.yaml`` (multi-task) + ``bdd100k-det.yaml`` (detection) in the root.
Thin layer over :mod:`lsdense.bdd100k` (plain data code, no Ultralytics).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    """Convert every split and print what was written."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", help="BDD100K root (official release layout)")
    p.add_argument("--classes", default="ayolom",
                   help="'ayolom' (vehicle = car+bus+truck+train), 'bdd10', or name=cat,cat;...")
    p.add_argument("--json-dir", default="labels/det_20", help="folder of det_<split>.json (under root)")
    p.add_argument("--splits", nargs="+", default=["train", "val"])
    a = p.parse_args(argv)

    from lsdense.bdd100k import convert_det_json, write_dataset_yamls

    root = Path(a.root)
    for split in a.splits:
        js = root / a.json_dir / f"det_{split}.json"
        if not js.is_file():
            raise SystemExit(f"error: {js} not found (use --json-dir to point at det_<split>.json).")
        res = convert_det_json(js, root / "images/100k" / split, root / "labels/100k" / split,
                               a.classes)
        print(f"{split}: {res.summary()}\n  -> {root / 'labels/100k' / split}")
    for k, v in write_dataset_yamls(root, a.classes).items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
