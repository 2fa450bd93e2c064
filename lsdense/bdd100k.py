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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import yaml

__all__ = ["BDD_CATEGORIES", "AYOLOM_VEHICLE", "BDD10", "parse_class_map", "convert_det_json",
           "Conversion", "write_dataset_yamls"]

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


@dataclass
class Conversion:
    """What :func:`convert_det_json` read and wrote (every label is counted exactly once).

    Attributes:
        frames: frames in the JSON (one txt each, empty for a frame without boxes).
        frames_without_labels: frames whose ``labels`` is absent, null or empty.
        boxes: rows written (one per kept ``box2d``).
        clipped: written boxes that reached past the image border and were clipped to it.
        not_selected: labels dropped because the class map does not select their category,
            by category (e.g. 'traffic light' for A-YOLOM's vehicle class).
        without_box2d: labels with no ``box2d`` (``poly2d`` lane / drivable-area entries of
            the 2018 release), by category.
        degenerate: boxes with no area left inside the image (after clipping).
        image_sizes_read: frames whose size came from the image file (the rest use
            ``default_size``).
    """

    frames: int = 0
    frames_without_labels: int = 0
    boxes: int = 0
    clipped: int = 0
    not_selected: Counter = field(default_factory=Counter)
    without_box2d: Counter = field(default_factory=Counter)
    degenerate: int = 0
    image_sizes_read: int = 0

    def __int__(self) -> int:  # the number of label files, as this function used to return
        return self.frames

    def summary(self) -> str:
        """One line for a tool to print."""
        drop = ", ".join(f"{k}: {v}" for k, v in sorted(self.not_selected.items())) or "none"
        nobox = ", ".join(f"{k}: {v}" for k, v in sorted(self.without_box2d.items())) or "none"
        return (f"{self.frames} frames ({self.frames_without_labels} without labels), "
                f"{self.boxes} boxes written ({self.clipped} clipped to the image), "
                f"{self.degenerate} empty after clipping; not selected by the class map: {drop}; "
                f"labels without box2d: {nobox}")


def _image_size(path: Path) -> Optional[Tuple[int, int]]:
    """(width, height) as decoders show the image, or None when the file is absent.

    EXIF orientations 5-8 turn the image by 90 degrees: cv2 (Ultralytics, mmcv) decodes it
    turned, and BDD100K boxes are drawn on the displayed image. The rule of Ultralytics'
    ``exif_size`` for JPEG/PNG, read with Pillow so that plain data code needs no Ultralytics.
    """
    from PIL import Image

    if not path.is_file():
        return None
    with Image.open(path) as im:
        w, h = im.size
        return (h, w) if im.getexif().get(274) in (5, 6, 7, 8) else (w, h)


def convert_det_json(json_file: Union[str, Path], image_dir: Union[str, Path],
                     out_dir: Union[str, Path], class_map: Union[str, ClassMap] = "ayolom",
                     default_size: Sequence[int] = (1280, 720)) -> Conversion:
    """Write one YOLO txt per frame of a BDD100K detection JSON; return what was converted.

    Reads the official ``det_20`` files (a list of frames) and Scalabel exports
    (``{"frames": [...]}``). Frames without ``labels`` get an empty txt (a background
    image for Ultralytics); labels without ``box2d`` (``poly2d`` lanes / drivable areas) and
    categories the class map does not select are skipped and counted; boxes past the image
    border are clipped to it (BDD100K boxes are float pixel corners ``x1 y1 x2 y2``).
    Image sizes are read from ``image_dir`` (BDD100K frames are 1280x720 otherwise).

    Raises:
        ValueError: the JSON cannot be read, is not a list of frames, or a frame lacks a
            ``name`` or has a box with missing or non-numeric corners (message names it).
    """
    cmap = parse_class_map(class_map)
    cat_to_id = {_ALIASES.get(c, c): i for i, cats in enumerate(cmap.values()) for c in cats}
    json_file, out_dir = Path(json_file), Path(out_dir)
    try:
        frames = json.loads(json_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"Cannot read BDD100K detection JSON {json_file}: {err}") from err
    if isinstance(frames, dict):  # Scalabel export: {"frames": [...]}
        frames = frames.get("frames")
    if not isinstance(frames, list):
        raise ValueError(f"{json_file} is not a BDD100K detection JSON (expected a list of "
                         f"frames, or a Scalabel export with a 'frames' list).")
    out_dir.mkdir(parents=True, exist_ok=True)
    res = Conversion(frames=len(frames))
    for k, fr in enumerate(frames):
        if not isinstance(fr, dict) or "name" not in fr:
            raise ValueError(f"{json_file}: frame {k} has no 'name'.")
        size = _image_size(Path(image_dir) / fr["name"])
        res.image_sizes_read += size is not None
        w, h = size or default_size
        labels = fr.get("labels") or []
        res.frames_without_labels += not labels
        rows = []
        for lb in labels:
            raw = lb.get("category")
            cat, box = _ALIASES.get(raw, raw), lb.get("box2d")
            if not box:
                res.without_box2d[str(raw)] += 1
                continue
            if cat not in cat_to_id:
                res.not_selected[str(raw)] += 1
                continue
            try:
                x1, y1, x2, y2 = (float(box[c]) for c in ("x1", "y1", "x2", "y2"))
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"{json_file}: frame {fr['name']!r}, label {lb.get('id')!r}: "
                                 f"box2d {box!r} needs numeric x1, y1, x2, y2.") from None
            cx1, cy1 = max(0.0, x1), max(0.0, y1)
            cx2, cy2 = min(float(w), x2), min(float(h), y2)
            if cx2 <= cx1 or cy2 <= cy1:
                res.degenerate += 1
                continue
            res.clipped += (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2)
            rows.append(f"{cat_to_id[cat]} {(cx1 + cx2) / 2 / w:.6f} {(cy1 + cy2) / 2 / h:.6f} "
                        f"{(cx2 - cx1) / w:.6f} {(cy2 - cy1) / h:.6f}")
        res.boxes += len(rows)
        (out_dir / (Path(fr["name"]).stem + ".txt")).write_text("\n".join(rows) + ("\n" if rows else ""))
    return res


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
