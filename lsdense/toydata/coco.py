"""Toy COCO: shape scenes in the COCO 2017 instances layout.

``make_coco(data_root, ...)`` writes::

    data_root/train2017/<id>.jpg, data_root/val2017/<id>.jpg
    data_root/annotations/instances_{train,val}2017.json   boxes, polygon masks, areas

which is what mmdet's ``coco_detection.py`` / ``coco_instance.py`` base configs
read. Categories are ``circle``, ``square`` and
``triangle`` (ids 1-3); masks are the visible part of each shape.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np

from .shapes import SHAPES, jitter_size, mask_to_polygons, render_scene

__all__ = ["make_coco", "COCO_CLASSES"]

COCO_CLASSES = SHAPES


def make_coco(data_root: Union[str, Path], num_train: int = 400, num_val: int = 60, seed: int = 0,
              size: Tuple[int, int] = (256, 320)) -> Dict[str, Path]:
    """Write a toy COCO dataset; return ``{'data_root', 'train_ann', 'val_ann'}``.

    Args:
        data_root: output directory (the config's ``data_root``).
        num_train, num_val: images per split.
        seed: RNG seed (same seed, same bytes).
        size: nominal image (height, width); each image varies around it.
    """
    import cv2

    root = Path(data_root)
    rng = np.random.default_rng(seed)
    out = {"data_root": root}
    ann_id = 1
    for split, n, first_id in (("train", num_train, 1), ("val", num_val, 1_000_000)):
        img_dir = root / f"{split}2017"
        img_dir.mkdir(parents=True, exist_ok=True)
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for k in range(n):
            image_id = first_id + k
            h, w = jitter_size(rng, size)
            scene = render_scene(rng, h, w)
            name = f"{image_id:012d}.jpg"
            cv2.imwrite(str(img_dir / name), scene.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
            images.append({"id": image_id, "file_name": name, "height": h, "width": w})
            for inst in scene.instances:
                polys = mask_to_polygons(inst.mask)
                if not polys:
                    continue
                x1, y1, x2, y2 = inst.bbox
                annotations.append({
                    "id": ann_id, "image_id": image_id, "category_id": inst.label + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": float(inst.mask.sum()),
                    "segmentation": polys, "iscrowd": 0})
                ann_id += 1
        data = {"info": {"description": f"lsdense toy COCO (seed {seed})", "version": "1.0"},
                "licenses": [],
                "images": images, "annotations": annotations,
                "categories": [{"id": i + 1, "name": c, "supercategory": "shape"}
                               for i, c in enumerate(COCO_CLASSES)]}
        ann = root / "annotations" / f"instances_{split}2017.json"
        ann.write_text(json.dumps(data))
        out[f"{split}_ann"] = ann
    return out
