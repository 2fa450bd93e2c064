"""Procedural shape scenes shared by the toy COCO, VOC and ADE20K writers.

A scene is a textured background (smooth two-colour gradient, noise, clutter
lines) with a few textured shapes (circle, square, triangle) at a range of
scales and rotations. Shapes may occlude each other, but a placement that would
hide more than :data:`MAX_OCCLUDED` of an earlier shape is rejected, so every
drawn shape is annotated and its visible mask is exact. Everything is drawn
from one ``numpy.random.Generator``: the same seed gives the same pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

__all__ = ["SHAPES", "Instance", "Scene", "render_scene", "mask_to_polygons", "jitter_size"]

SHAPES = ("circle", "square", "triangle")
MAX_OCCLUDED = 0.35  # at most this fraction of a shape may be hidden by later shapes


@dataclass
class Instance:
    """One drawn shape: its class index in :data:`SHAPES` and its visible mask."""

    label: int
    mask: np.ndarray  # (H, W) bool, visible pixels only

    @property
    def bbox(self) -> Tuple[int, int, int, int]:
        """Tight box ``(x1, y1, x2, y2)`` of the visible pixels (x2/y2 exclusive)."""
        ys, xs = np.nonzero(self.mask)
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@dataclass
class Scene:
    """A rendered image (BGR uint8), its shapes, and the background split."""

    image: np.ndarray
    instances: List[Instance]
    upper: np.ndarray  # (H, W) bool: the upper background region (ADE20K 'sky')


def _texture(rng: np.random.Generator, h: int, w: int, base: np.ndarray) -> np.ndarray:
    """A (h, w, 3) float texture around colour ``base``: solid, stripes, checker or speckle."""
    kind = int(rng.integers(4))
    tex = np.broadcast_to(base, (h, w, 3)).astype(np.float32).copy()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    other = np.clip(base * rng.uniform(0.45, 0.75), 0, 255)
    if kind == 1:  # stripes at a random angle
        ang, period = rng.uniform(0, np.pi), rng.uniform(5, 12)
        on = (np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * 2 * np.pi / period) > 0)
        tex[on] = other
    elif kind == 2:  # checker
        cell = int(rng.integers(4, 10))
        on = ((xx // cell + yy // cell) % 2).astype(bool)
        tex[on] = other
    elif kind == 3:  # speckle
        tex += rng.normal(0, 28, (h, w, 1)).astype(np.float32)
    return tex


def _shape_mask(rng: np.random.Generator, label: int, h: int, w: int, size: float,
                cx: float, cy: float) -> np.ndarray:
    import cv2

    mask = np.zeros((h, w), np.uint8)
    if SHAPES[label] == "circle":
        cv2.ellipse(mask, (int(cx), int(cy)), (int(size / 2), int(size / 2 * rng.uniform(0.85, 1.0))),
                    float(rng.uniform(0, 180)), 0, 360, 1, -1, cv2.LINE_AA)
    else:
        n = 4 if SHAPES[label] == "square" else 3
        start = rng.uniform(0, 2 * np.pi)
        r = size / 2 * (1.2 if n == 3 else 1.0)  # triangles look small at equal radius
        ang = start + np.arange(n) * 2 * np.pi / n
        pts = np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1, cv2.LINE_AA)
    return mask.astype(bool)


def _background(rng: np.random.Generator, h: int, w: int) -> Tuple[np.ndarray, np.ndarray]:
    import cv2

    horizon = int(h * rng.uniform(0.3, 0.65))
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky = rng.uniform([150, 90, 40], [255, 200, 140]).astype(np.float32)  # BGR, bluish
    ground = rng.uniform([20, 60, 80], [110, 160, 190]).astype(np.float32)  # brownish / greenish
    img = np.where(np.arange(h)[:, None, None] < horizon,
                   sky * (0.75 + 0.25 * (1 - yy)), ground * (0.8 + 0.2 * yy))
    img = np.broadcast_to(img, (h, w, 3)).copy()
    img += rng.normal(0, 9, (h, w, 3))
    for _ in range(int(rng.integers(2, 7))):  # clutter that is not an object
        p0 = tuple(int(v) for v in rng.integers(0, [w, h]))
        p1 = tuple(int(v) for v in rng.integers(0, [w, h]))
        col = tuple(float(c) for c in rng.uniform(0, 255, 3))
        cv2.line(img, p0, p1, col, int(rng.integers(1, 3)), cv2.LINE_AA)
    upper = np.zeros((h, w), bool)
    upper[:horizon] = True
    return img, upper


def render_scene(rng: np.random.Generator, height: int, width: int, max_objects: int = 4,
                 min_size: float = 24, max_size: float = 0.45) -> Scene:
    """Draw one scene.

    Args:
        rng: the random generator (the only source of randomness).
        height, width: image size in pixels.
        max_objects: at most this many shapes (at least one).
        min_size: smallest shape diameter in pixels.
        max_size: largest shape diameter as a fraction of the shorter image side.

    Returns:
        A :class:`Scene` whose instances have exact visible masks.
    """
    img, upper = _background(rng, height, width)
    short = min(height, width)
    drawn: List[Tuple[int, np.ndarray, np.ndarray]] = []  # (label, full mask, texture)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            label = int(rng.integers(len(SHAPES)))
            # log-uniform scale range, as object sizes in real datasets
            size = float(np.exp(rng.uniform(np.log(min_size), np.log(max_size * short))))
            cx, cy = rng.uniform(size / 2, width - size / 2), rng.uniform(size / 2, height - size / 2)
            mask = _shape_mask(rng, label, height, width, size, cx, cy)
            if mask.sum() < 40:
                continue
            if all((_visible(m, drawn, i) & ~mask).sum() >= (1 - MAX_OCCLUDED) * m.sum()
                   for i, (_, m, _) in enumerate(drawn)):
                break
        else:
            continue
        base = rng.uniform(0, 255, 3).astype(np.float32)
        drawn.append((label, mask, _texture(rng, height, width, base)))
    for _, mask, tex in drawn:
        img[mask] = tex[mask]
    image = np.clip(img, 0, 255).astype(np.uint8)
    instances = [Instance(label, _visible(mask, drawn, i)) for i, (label, mask, _) in enumerate(drawn)]
    return Scene(image, [inst for inst in instances if inst.mask.any()], upper)


def jitter_size(rng: np.random.Generator, size: Tuple[int, int]) -> Tuple[int, int]:
    """Height and width drawn around ``size`` (h, w): +-12 %, so aspect ratios vary."""
    h, w = size
    return int(h * rng.uniform(0.88, 1.12)), int(w * rng.uniform(0.88, 1.12))


def _visible(mask: np.ndarray, drawn: list, index: int) -> np.ndarray:
    """Pixels of shape ``index`` not covered by the shapes drawn after it."""
    vis = mask.copy()
    for _, later, _ in drawn[index + 1:]:
        vis &= ~later
    return vis


def mask_to_polygons(mask: np.ndarray) -> List[List[float]]:
    """COCO polygons (``[x1, y1, x2, y2, ...]`` per outer contour) of a binary mask."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [[float(v) for v in c.reshape(-1)] for c in contours if len(c) >= 3]
