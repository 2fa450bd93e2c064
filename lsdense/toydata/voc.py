"""Toy Pascal VOC: shape scenes in the ``VOCdevkit`` layout.

``make_voc(data_root, ...)`` writes (``data_root`` is a ``VOCdevkit`` folder)::

    data_root/VOC2007/{JPEGImages,Annotations}/<id>.{jpg,xml}
    data_root/VOC2007/ImageSets/Main/{trainval,test}.txt
    data_root/VOC2012/...                  (trainval only, as in the real 07+12 split)

with the VOC XML fields mmdet's ``VOCDataset`` reads (1-based inclusive boxes,
``difficult`` flags). Object names are ``circle``, ``square``, ``triangle``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple, Union
from xml.etree import ElementTree as ET

import numpy as np

from .shapes import SHAPES, jitter_size, render_scene

__all__ = ["make_voc", "VOC_CLASSES"]

VOC_CLASSES = SHAPES


def _xml(year: str, name: str, h: int, w: int, objects) -> bytes:
    ann = ET.Element("annotation")
    ET.SubElement(ann, "folder").text = f"VOC{year}"
    ET.SubElement(ann, "filename").text = f"{name}.jpg"
    src = ET.SubElement(ann, "source")
    ET.SubElement(src, "database").text = "lsdense toy VOC"
    size = ET.SubElement(ann, "size")
    for tag, v in (("width", w), ("height", h), ("depth", 3)):
        ET.SubElement(size, tag).text = str(v)
    ET.SubElement(ann, "segmented").text = "0"
    for label, (x1, y1, x2, y2) in objects:
        obj = ET.SubElement(ann, "object")
        ET.SubElement(obj, "name").text = VOC_CLASSES[label]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        box = ET.SubElement(obj, "bndbox")
        # VOC boxes are 1-based and inclusive: pixel columns x1..x2-1 -> x1+1..x2
        for tag, v in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(box, tag).text = str(v)
    return ET.tostring(ann)


def make_voc(data_root: Union[str, Path], num_train: int = 400, num_val: int = 60, seed: int = 0,
             size: Tuple[int, int] = (256, 320), num_train_2012: int = 0) -> Dict[str, Path]:
    """Write a toy VOCdevkit; return ``{'data_root', 'voc2007', 'voc2012'}``.

    Args:
        data_root: the ``VOCdevkit`` folder to write (the config's ``data_root``).
        num_train: VOC2007 ``trainval`` images; ``num_val``: VOC2007 ``test`` images.
        seed: RNG seed (same seed, same bytes).
        size: nominal image (height, width).
        num_train_2012: VOC2012 ``trainval`` images (default: half of ``num_train``).
    """
    import cv2

    data_root = Path(data_root)
    rng = np.random.default_rng(seed)
    n2012 = num_train_2012 or max(1, num_train // 2)
    out = {"data_root": data_root}
    for year, splits in (("2007", (("trainval", num_train), ("test", num_val))),
                         ("2012", (("trainval", n2012),))):
        base = data_root / f"VOC{year}"
        for d in ("JPEGImages", "Annotations", "ImageSets/Main"):
            (base / d).mkdir(parents=True, exist_ok=True)
        counter = 0
        for split, n in splits:
            names = []
            for _ in range(n):
                counter += 1
                name = f"{year}_{counter:06d}"
                h, w = jitter_size(rng, size)
                scene = render_scene(rng, h, w)
                cv2.imwrite(str(base / "JPEGImages" / f"{name}.jpg"), scene.image,
                            [cv2.IMWRITE_JPEG_QUALITY, 92])
                objects = [(inst.label, inst.bbox) for inst in scene.instances]
                (base / "Annotations" / f"{name}.xml").write_bytes(_xml(year, name, h, w, objects))
                names.append(name)
            (base / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(names) + "\n")
        out[f"voc{year}"] = base
    return out
