"""Toy BDD100K: road scenes in the official release layout.

``make_bdd100k(root, num_train, num_val, seed, size)`` writes::

    root/images/100k/{train,val}/<name>.jpg
    root/labels/det_20/det_{train,val}.json      official detection JSON (box2d, category)
    root/drivable/masks/{train,val}/<name>.png   0 direct, 1 alternative, 2 background
    root/lane/masks/{train,val}/<name>.png       255 background, lane pixels < 255
    root/labels/100k/{train,val}/<name>.txt      YOLO txt from tools/convert_bdd100k.py
    root/bdd100k.yaml                            multi-task dataset YAML (A-YOLOM: 1 class)
    root/bdd100k-det.yaml                        detection-only dataset YAML (same images)

Scenes: sky, a road trapezoid (ego lane drivable-direct, side lanes
alternative), white lane markings, vehicles (car/truck/bus) on the road and
pedestrians beside it, so boxes, drivable area and lanes are all learnable.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np

__all__ = ["make_bdd100k"]

_VEHICLES = {"car": (40, 40, 200), "truck": (30, 140, 30), "bus": (0, 160, 230)}


def _scene(rng: np.random.Generator, h: int, w: int):
    import cv2

    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2] = (200, 160, 110)  # sky (BGR)
    img[h // 2:] = (60, 110, 60)  # grass
    drivable = np.full((h, w), 2, np.uint8)
    lane = np.full((h, w), 255, np.uint8)
    cx = w / 2 + rng.uniform(-0.1, 0.1) * w
    top, bottom = h // 2, h - 1
    half_top, half_bot = w * rng.uniform(0.04, 0.08), w * rng.uniform(0.35, 0.5)

    def x_at(y: float, frac: float) -> int:  # x of the road at row y, frac in [-1, 1] across the road
        t = (y - top) / (bottom - top)
        return int(round(cx + frac * (half_top + t * (half_bot - half_top))))

    road = np.array([[x_at(top, -1), top], [x_at(top, 1), top], [x_at(bottom, 1), bottom],
                     [x_at(bottom, -1), bottom]], np.int32)
    ego = np.array([[x_at(top, -1 / 3), top], [x_at(top, 1 / 3), top], [x_at(bottom, 1 / 3), bottom],
                    [x_at(bottom, -1 / 3), bottom]], np.int32)
    cv2.fillPoly(img, [road], (90, 90, 90))
    cv2.fillPoly(drivable, [road], 1)
    cv2.fillPoly(drivable, [ego], 0)
    thick = max(1, w // 80)
    for frac in (-1, -1 / 3, 1 / 3, 1):
        p0, p1 = (x_at(top, frac), top), (x_at(bottom, frac), bottom)
        cv2.line(img, p0, p1, (250, 250, 250), thick)
        cv2.line(lane, p0, p1, 0 if abs(frac) < 1 else 1, thick)  # lane category codes < 255
    boxes = []
    for _ in range(int(rng.integers(1, 4))):
        cat = str(rng.choice(list(_VEHICLES)))
        y2 = rng.uniform(top + 0.25 * (bottom - top), bottom)
        scale = (y2 - top) / (bottom - top)
        bw = w * (0.08 + 0.1 * scale) * (1.4 if cat != "car" else 1.0)
        bh = bw * (0.8 if cat == "car" else 1.1)
        x_c = x_at(y2, rng.uniform(-0.6, 0.6))
        x1, y1 = max(0, x_c - bw / 2), max(top, y2 - bh)
        x2 = min(w - 1, x_c + bw / 2)
        if x2 - x1 < 3 or y2 - y1 < 3:
            continue
        cv2.rectangle(img, (int(x1), int(y1)), (int(x2), int(y2)), _VEHICLES[cat], -1)
        cv2.rectangle(img, (int(x1), int(y1 + (y2 - y1) * 0.6)), (int(x2), int(y2)), (20, 20, 20), -1)
        boxes.append((cat, x1, y1, x2, y2))
    if rng.random() < 0.5:  # a pedestrian beside the road (dropped by the 'vehicle' class map)
        y2 = rng.uniform(top + 0.3 * (bottom - top), bottom)
        x_c = x_at(y2, 1.2 if rng.random() < 0.5 else -1.2)
        ph = h * 0.12
        x1, x2, y1 = x_c - ph / 6, x_c + ph / 6, y2 - ph
        if 0 <= x1 and x2 < w:
            cv2.rectangle(img, (int(x1), int(y1)), (int(x2), int(y2)), (30, 30, 160), -1)
            boxes.append(("pedestrian", x1, y1, x2, y2))
    noise = rng.integers(-12, 13, img.shape)
    img = np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return img, drivable, lane, boxes


def make_bdd100k(root: Union[str, Path], num_train: int = 16, num_val: int = 8, seed: int = 0,
                 size: Union[int, Tuple[int, int]] = (96, 160)) -> Dict[str, Path]:
    """Write a toy BDD100K (official layout) and its dataset YAMLs; return their paths.

    Args:
        root: output directory.
        num_train, num_val: images per split.
        seed: RNG seed (same seed, same files).
        size: image (height, width), or one int for square images.

    Returns:
        ``{'root', 'multitask_yaml', 'det_yaml'}`` paths.
    """
    import cv2

    from lsdense.bdd100k import AYOLOM_VEHICLE, convert_det_json, write_dataset_yamls

    root = Path(root)
    h, w = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    for split, n in (("train", num_train), ("val", num_val)):
        frames = []
        for d in (f"images/100k/{split}", f"drivable/masks/{split}", f"lane/masks/{split}", "labels/det_20"):
            (root / d).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            name = f"toy{split[0]}{i:04d}"
            img, drivable, lane, boxes = _scene(rng, h, w)
            cv2.imwrite(str(root / f"images/100k/{split}/{name}.jpg"), img)
            cv2.imwrite(str(root / f"drivable/masks/{split}/{name}.png"), drivable)
            cv2.imwrite(str(root / f"lane/masks/{split}/{name}.png"), lane)
            frames.append({"name": f"{name}.jpg", "attributes": {"weather": "clear"},
                           "labels": [{"id": str(k), "category": c,
                                       "box2d": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}}
                                      for k, (c, x1, y1, x2, y2) in enumerate(boxes)]})
        js = root / f"labels/det_20/det_{split}.json"
        js.write_text(json.dumps(frames))
        convert_det_json(js, root / f"images/100k/{split}", root / f"labels/100k/{split}",
                         AYOLOM_VEHICLE)
    paths = write_dataset_yamls(root, AYOLOM_VEHICLE)
    return {"root": root, **paths}
