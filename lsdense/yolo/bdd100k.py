"""BDD100K detection JSON -> YOLO txt, class selection/merging, and the dataset YAMLs.

The official release keeps boxes in ``labels/det_20/det_{train,val}.json`` (a list
of frames, each ``{"name", "labels": [{"category", "box2d": {x1, y1, x2, y2}}]}``);
Ultralytics reads one ``cls cx cy w h`` txt per image, found by replacing
``/images/`` with ``/labels/``: ``images/100k/train/a.jpg`` ->
``labels/100k/train/a.txt``. A class map selects and merges categories; A-YOLOM
merges car, bus, truck and train into one ``vehicle`` class and drops the rest.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Sequence, Union

import yaml

__all__ = ["BDD_CATEGORIES", "AYOLOM_VEHICLE", "BDD10", "parse_class_map", "convert_det_json",
           "write_dataset_yamls"]

BDD_CATEGORIES = ("pedestrian", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
                  "traffic light", "traffic sign")
_ALIASES = {"person": "pedestrian", "bike": "bicycle", "motor": "motorcycle"}  # 2018 release names
ClassMap = Dict[str, List[str]]  # train class name -> BDD categories merged into it
AYOLOM_VEHICLE: ClassMap = {"vehicle": ["car", "bus", "truck", "train"]}
BDD10: ClassMap = {c: [c] for c in BDD_CATEGORIES}


def parse_class_map(spec: Union[str, ClassMap]) -> ClassMap:
    """'ayolom' | 'bdd10' | 'vehicle=car,bus,truck,train;person=pedestrian,rider' -> class map."""
    if isinstance(spec, dict):
        cmap = {str(k): list(v) for k, v in spec.items()}
    elif spec in ("ayolom", "vehicle"):
        cmap = dict(AYOLOM_VEHICLE)
    elif spec == "bdd10":
        cmap = dict(BDD10)
    else:
        cmap = {}
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            if "=" not in part:
                raise ValueError(f"Class map entry {part!r}: write name=cat1,cat2 (e.g. "
                                 f"'vehicle=car,bus,truck,train').")
            name, cats = part.split("=", 1)
            cmap[name.strip()] = [c.strip() for c in cats.split(",") if c.strip()]
    bad = sorted({_ALIASES.get(c, c) for v in cmap.values() for c in v} - set(BDD_CATEGORIES))
    if bad:
        raise ValueError(f"Unknown BDD100K categories {bad}; valid: {', '.join(BDD_CATEGORIES)}.")
    return cmap


def convert_det_json(json_file: Union[str, Path], image_dir: Union[str, Path],
                     out_dir: Union[str, Path], class_map: Union[str, ClassMap] = "ayolom",
                     default_size: Sequence[int] = (1280, 720)) -> int:
    """Write one YOLO txt per frame of a BDD100K detection JSON; return the number of files.

    Image sizes are read from ``image_dir`` (BDD100K frames are 1280x720 otherwise).
    """
    from PIL import Image

    cmap = parse_class_map(class_map)
    cat_to_id = {_ALIASES.get(c, c): i for i, cats in enumerate(cmap.values()) for c in cats}
    json_file, out_dir = Path(json_file), Path(out_dir)
    try:
        frames = json.loads(json_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"Cannot read BDD100K detection JSON {json_file}: {err}") from err
    if isinstance(frames, dict):  # Scalabel export: {"frames": [...]}
        frames = frames.get("frames", [])
    out_dir.mkdir(parents=True, exist_ok=True)
    for k, fr in enumerate(frames):
        if "name" not in fr:
            raise ValueError(f"{json_file}: frame {k} has no 'name'.")
        img = Path(image_dir) / fr["name"]
        w, h = Image.open(img).size if img.is_file() else default_size
        rows = []
        for lb in fr.get("labels") or []:
            cat, box = _ALIASES.get(lb.get("category"), lb.get("category")), lb.get("box2d")
            if cat not in cat_to_id or not box:
                continue
            x1, y1 = max(0.0, box["x1"]), max(0.0, box["y1"])
            x2, y2 = min(float(w), box["x2"]), min(float(h), box["y2"])
            if x2 <= x1 or y2 <= y1:
                continue
            rows.append(f"{cat_to_id[cat]} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
                        f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")
        (out_dir / (Path(fr["name"]).stem + ".txt")).write_text("\n".join(rows) + ("\n" if rows else ""))
    return len(frames)


def write_dataset_yamls(root: Union[str, Path], class_map: Union[str, ClassMap] = "ayolom"
                        ) -> Dict[str, Path]:
    """Write ``bdd100k.yaml`` (multi-task) and ``bdd100k-det.yaml`` (detection) into ``root``."""
    root = Path(root).resolve()
    names = {i: n for i, n in enumerate(parse_class_map(class_map))}
    common = {"path": str(root), "train": "images/100k/train", "val": "images/100k/val", "names": names}
    mt, det = root / "bdd100k.yaml", root / "bdd100k-det.yaml"
    mt.write_text("# BDD100K multi-task (A-YOLOM): boxes + drivable area + lane lines, official layout\n"
                  + yaml.safe_dump({**common, "layout": "official"}, sort_keys=False))
    det.write_text("# BDD100K detection only (YOLO txt from tools/convert_bdd100k.py)\n"
                   + yaml.safe_dump(common, sort_keys=False))
    return {"multitask_yaml": mt, "det_yaml": det}
