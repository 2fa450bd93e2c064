"""Toy ADE20K: shape scenes in the ``ADEChallengeData2016`` layout.

``make_ade20k(data_root, ...)`` writes (``data_root`` is an ``ADEChallengeData2016`` folder)::

    data_root/images/{training,validation}/ADE_{train,val}_<n>.jpg
    data_root/annotations/{training,validation}/ADE_{train,val}_<n>.png

Label maps are single-channel PNGs holding real ADE20K ids (0 = other, ids
1-150 in the order of the SceneParsing benchmark), so mmseg's ``ADE20KDataset``
(``reduce_zero_label=True``) reads them unchanged. Five ids occur: the upper
background is ``sky``, the lower ``floor``, and the shapes are ``ball``
(circle), ``box`` (square) and ``tent`` (triangle).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np

from .shapes import SHAPES, jitter_size, render_scene

__all__ = ["make_ade20k", "ADE_TOY_CLASSES", "ADE_IDS"]

# ADE20K SceneParsing ids (1-based, as stored in the PNGs) of the toy classes.
ADE_IDS = {"sky": 3, "floor": 4, "box": 42, "tent": 115, "ball": 120}
_SHAPE_TO_ADE = {"circle": "ball", "square": "box", "triangle": "tent"}
# The quickstart's class list (a subset of ADE20KDataset.METAINFO['classes']), in ADE id order.
ADE_TOY_CLASSES = tuple(sorted(ADE_IDS, key=ADE_IDS.get))


def make_ade20k(data_root: Union[str, Path], num_train: int = 300, num_val: int = 50, seed: int = 0,
                size: Tuple[int, int] = (256, 320)) -> Dict[str, Path]:
    """Write a toy ADE20K; return ``{'data_root'}``.

    Args:
        data_root: the ``ADEChallengeData2016`` folder to write (the config's ``data_root``).
        num_train, num_val: images in ``training`` / ``validation``.
        seed: RNG seed (same seed, same bytes).
        size: nominal image (height, width).
    """
    import cv2

    data_root = Path(data_root)
    rng = np.random.default_rng(seed)
    for split, tag, n in (("training", "train", num_train), ("validation", "val", num_val)):
        img_dir, ann_dir = data_root / "images" / split, data_root / "annotations" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        ann_dir.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            h, w = jitter_size(rng, size)
            scene = render_scene(rng, h, w)
            label = np.where(scene.upper, ADE_IDS["sky"], ADE_IDS["floor"]).astype(np.uint8)
            for inst in scene.instances:
                label[inst.mask] = ADE_IDS[_SHAPE_TO_ADE[SHAPES[inst.label]]]
            name = f"ADE_{tag}_{k + 1:08d}"
            cv2.imwrite(str(img_dir / f"{name}.jpg"), scene.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
            cv2.imwrite(str(ann_dir / f"{name}.png"), label)
    return {"data_root": data_root}
