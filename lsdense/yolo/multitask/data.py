"""BDD100K multi-task data: detection boxes + drivable-area and lane-line masks.

Dataset YAML (``configs/yolo/bdd100k.yaml``)::

    path: /data/bdd100k
    train: images/100k/train
    val: images/100k/val
    names: {0: vehicle}
    layout: official          # or 'ayolom'; sets the defaults below
    labels: labels/100k       # YOLO txt (tools/convert_bdd100k.py), <labels>/<split>/<stem>.txt
    drivable: drivable/masks  # PNG, <drivable>/<split>/<stem>.png
    lane: lane/masks          # PNG, <lane>/<split>/<stem>.png
    drivable_fg: auto         # encoding read from the values (see detect_mask_encoding)
    lane_fg: auto             # or explicit: [0, 1], not255, nonzero, [255]
    class_map: null           # optional {source id: train id}; unlisted ids are dropped

``layout: ayolom`` reads the official A-YOLOM release (``bdd-multi.yaml`` of the
official repository): ``images/{train2017,val2017}``, YOLO txt boxes under
``detection-object/labels/<split>``, and segmentation labels as *polygon* txt
files, one directory per task (``seg-drivable-10/labels/<split>``,
``seg-lane-11/labels/<split>``), rows ``cls x1 y1 x2 y2 ...`` normalised to
0..1 (class 10 drivable, 11 lane; every row of a task file is that task's
foreground). Its boxes keep the release's ids; merge with ``class_map``.
``mask_format: png`` / ``polygon`` overrides the layout's default.

Polygons follow the official order (``official.md``, "Data"): they travel
through the augmentation as an Ultralytics ``Instances`` (``seg_instances``,
task id per polygon in ``seg_cls``), resampled to 1000 points as the official
``Instances`` does (vertices kept), and are filled in ``MultiTaskFormat`` at
the final working resolution with Ultralytics' ``polygon2mask`` (integer
vertices, as the official ``polygon2mask``). Each transform moves them with
its own ``apply_instances`` and the parameters it drew for the image (see
``carry_polygons``). CutMix (default off) has no polygon path and is refused.
One difference stays, in Ultralytics' own code: after the affine, 8.4 clamps a
polygon's points to the box of its in-frame points, the fork only to the frame
(they differ only for polygons that leave the frame).

Both masks travel through Ultralytics' own augmentations as one packed
``semantic_mask`` (bit 0 drivable, bit 1 lane, 255 = padding and borders), which
Mosaic, RandomPerspective, flips and LetterBox already transform (PNG layout:
nearest neighbour). With polygons that mask starts as zeros and only marks the
padding and borders (255); the polygons are filled into its other pixels. The
official loss and metrics count 255 as background; the lsdense option ignores it.
"""
from __future__ import annotations

from itertools import repeat
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import cv2
import numpy as np
import torch
from PIL import Image

from ultralytics.data.augment import Compose, CutMix, Format, LetterBox, MixUp, Mosaic, RandomFlip, RandomPerspective
from ultralytics.data.dataset import YOLODataset
from ultralytics.data.utils import exif_size, get_hash, polygon2mask
from ultralytics.utils import LOGGER
from ultralytics.utils.instance import Instances
from ultralytics.utils.ops import resample_segments, segments2boxes

from ..checks import TOLERANCE, parse_label_rows

__all__ = ["MultiTaskDataset", "MultiTaskFormat", "LAYOUTS", "resolve_layout", "foreground",
           "MaskEncoding", "detect_mask_encoding", "mask_value_counts",
           "read_polygons", "fill_polygons", "polygon_instances", "carry_polygons", "rasterise_polygons",
           "build_multitask_dataset", "verify_multitask_image"]

LAYOUTS: Dict[str, Dict[str, Any]] = {
    "official": dict(labels="labels/100k", drivable="drivable/masks", lane="lane/masks",
                     drivable_fg="auto", lane_fg="auto", mask_format="png"),
    "ayolom": dict(labels="detection-object/labels", drivable="seg-drivable-10/labels",
                   lane="seg-lane-11/labels", drivable_fg="auto", lane_fg="auto",
                   mask_format="polygon"),
}
SEG_TASKS = ("drivable", "lane")
SEG_POINTS = 1000  # official Instances resamples each polygon to 1000 points (ultralytics/yolo/utils/instance.py)
SCAN_VERSION = "lsdense-multitask-1"  # in the label-cache hash: bump when the scan's output changes


def resolve_layout(data: dict) -> dict:
    """Fill the layout defaults into a dataset dict (explicit keys win)."""
    layout = data.get("layout", "official")
    if layout not in LAYOUTS:
        raise ValueError(f"Unknown BDD100K layout {layout!r}; use one of {sorted(LAYOUTS)}.")
    return {**LAYOUTS[layout], **{k: v for k, v in data.items() if v is not None}}


def foreground(mask: np.ndarray, rule: Union[str, List[int]]) -> np.ndarray:
    """Boolean foreground of a mask: 'nonzero', 'not255', or a list of foreground values."""
    if rule == "nonzero":
        return mask != 0
    if rule == "not255":
        return mask != 255
    if isinstance(rule, (list, tuple)):
        return np.isin(mask, rule)
    raise ValueError(f"Mask foreground rule {rule!r}: use 'auto', 'nonzero', 'not255' or a list of values.")


MASK_SAMPLES = 8  # masks per task whose values decide the encoding (spread over the split)


class MaskEncoding:
    """How a task's PNG masks code foreground: ``name`` (for messages), the foreground rule
    (grey values, or ``'colour'``: every pixel that is not black), and the grey values the
    encoding allows (``None``: any)."""

    def __init__(self, name: str, fg, allowed=None):
        self.name, self.fg, self.allowed = name, fg, allowed
        self.lut = None
        if fg != "colour":
            v = np.arange(256)
            self.lut = foreground(v, fg).astype(np.uint8)

    def __call__(self, mask: np.ndarray, file: str, task: str) -> np.ndarray:
        """Foreground (uint8 0/1, (H, W)) of a mask read with ``cv2.IMREAD_UNCHANGED``.

        Raises:
            ValueError: a colour mask for a grey encoding, or grey values the encoding lacks.
        """
        grey = _grey(mask)
        if self.fg == "colour":
            if grey is not None:
                return (grey != 0).astype(np.uint8)
            return (mask[..., :3] != 0).any(-1).astype(np.uint8)
        if grey is None:
            raise ValueError(f"{task} mask {file} is a colour map, but the other {task} masks are "
                             f"{self.name}: store every mask in one encoding.")
        if self.allowed is not None:
            extra = sorted(set(np.unique(grey).tolist()) - set(self.allowed))
            if extra:
                raise ValueError(f"{task} mask {file} holds values {extra}, outside the {self.name} "
                                 f"encoding of the other {task} masks ({sorted(self.allowed)}): fix the "
                                 f"mask, or set {task}_fg to the values that mean {task}.")
        return self.lut[grey]


def _grey(mask: np.ndarray) -> Optional[np.ndarray]:
    """The grey values of a mask (a colour PNG whose channels are equal counts as grey), or
    None for a colour map."""
    if mask.ndim == 2:
        return mask
    c = mask[..., :3]
    return c[..., 0] if (c == c[..., :1]).all() else None


def mask_value_counts(files: List[str]) -> Tuple[Dict[Any, int], bool]:
    """Pixel counts per grey value (or per BGR colour for colour maps) over ``files``, and
    whether any is a colour map."""
    counts: Dict[Any, int] = {}
    colour = False
    for f in files:
        m = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if m is None:
            raise ValueError(f"Could not read mask {f}.")
        if m.dtype != np.uint8:
            raise ValueError(f"Mask {f} is {m.dtype}; masks are 8-bit PNGs (values 0..255).")
        g = _grey(m)
        if g is None:
            colour = True
            v, c = np.unique(m[..., :3].reshape(-1, 3), axis=0, return_counts=True)
            keys = [tuple(int(x) for x in row) for row in v]
        else:
            v, c = np.unique(g, return_counts=True)
            keys = v.tolist()
        for k, n in zip(keys, c.tolist()):
            counts[k] = counts.get(k, 0) + n
    return counts, colour


def detect_mask_encoding(counts: Dict[Any, int], colour: bool, task: str, where: str) -> MaskEncoding:
    """The encoding of a task's masks, from their pixel values (``mask_value_counts``).

    Public encodings (BDD100K release, YOLOP, A-YOLOM):

    * drivable: BDD100K ids (0 direct, 1 alternative, 2 background; foreground 0 and 1);
      0/1 (1 drivable); YOLOP ``da_seg`` 0/255 (255 drivable); BDD100K colour maps
      (black background, direct and alternative in colour).
    * lane: BDD100K lane bitmasks (255 no lane, every other value codes a lane's category,
      style and direction: the most common value is 255); YOLOP ``ll_seg`` 0/255 (255 lane,
      the most common value is 0); 0/1 (1 lane); colour maps with a black background.

    Raises:
        ValueError: values that fit none of these; the message names the values and the
            setting (``<task>_fg``) that reads them.
    """
    total = sum(counts.values()) or 1
    top = max(counts, key=counts.get) if counts else None
    if colour:
        if top == (0, 0, 0) or (0, 0, 0) in counts:
            return MaskEncoding(f"colour maps (black background, e.g. BDD100K {task} colormaps)",
                                "colour")
        raise ValueError(f"{task} masks ({where}) are colour maps without a black background "
                         f"(most common colour BGR {top}): convert them to grey masks and set "
                         f"{task}_fg to the values that mean {task}.")
    vals = set(counts)
    share = {v: round(100 * n / total) for v, n in sorted(counts.items())}
    if task == "drivable":
        if vals <= {0, 1, 2} and 2 in vals:
            return MaskEncoding("BDD100K drivable ids (0 direct, 1 alternative, 2 background)",
                                [0, 1], (0, 1, 2))
        if vals <= {0, 1}:
            return MaskEncoding("0/1 (1 = drivable)", [1], (0, 1))
        if vals <= {0, 255}:
            return MaskEncoding("0/255 (YOLOP da_seg: 255 = drivable)", [255], (0, 255))
    else:
        if 255 in vals and top == 255:
            return MaskEncoding("BDD100K lane bitmasks (255 = no lane)", "not255")
        if vals <= {0, 255}:
            return MaskEncoding("0/255 (YOLOP ll_seg: 255 = lane)", [255], (0, 255))
        if vals <= {0, 1}:
            return MaskEncoding("0/1 (1 = lane)", [1], (0, 1))
    raise ValueError(f"{task} masks ({where}) hold values {sorted(vals)} (% of pixels: {share}), "
                     f"not a known {task} encoding (BDD100K, YOLOP 0/255, 0/1): set {task}_fg in "
                     f"the dataset YAML to the values that mean {task}, e.g. {task}_fg: [1].")


def read_polygons(file: Union[str, Path]) -> List[np.ndarray]:
    """Polygons of a YOLO segmentation txt (``cls x1 y1 x2 y2 ...``, normalised) as (N, 2) arrays.

    Raises:
        ValueError: a row with an odd number of coordinates, fewer than 3 points, a
            non-numeric value or a coordinate outside Ultralytics' tolerance (-0.01..1.01,
            ``verify_image_label``) (message names file:line).
    """
    polys = []
    for n, line in enumerate(Path(file).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            vals = [float(v) for v in line.split()[1:]]
        except ValueError:
            vals = None
        problem = ("non-numeric value" if vals is None else
                   "odd number of coordinates" if len(vals) % 2 else
                   "fewer than 3 points" if len(vals) < 6 else
                   f"coordinates must be normalised to 0..1 (Ultralytics accepts -{TOLERANCE}.."
                   f"{1 + TOLERANCE})" if not all(-TOLERANCE <= v <= 1 + TOLERANCE for v in vals)
                   else None)
        if problem:
            raise ValueError(f"{file}:{n}: bad polygon row (cls x1 y1 x2 y2 ...): {problem}.")
        polys.append(np.array(vals, dtype=np.float32).reshape(-1, 2))
    return polys


def fill_polygons(polys: List[np.ndarray], h: int, w: int) -> np.ndarray:
    """(h, w) uint8 mask, 1 inside any polygon (normalised vertices scaled to w, h, truncated to int).

    Vertices only; the dataset fills the official way (``polygon_instances`` + ``rasterise_polygons``:
    points added on the edges first, which moves diagonal edges by up to 1 px after truncation).
    """
    mask = np.zeros((h, w), np.uint8)
    if polys:
        cv2.fillPoly(mask, [(p * (w, h)).astype(np.int32) for p in polys], 1)
    return mask


def polygon_instances(polys_per_task: List[List[np.ndarray]]) -> Tuple[Instances, np.ndarray]:
    """Polygons of every task as one Ultralytics ``Instances`` plus their task ids.

    Args:
        polys_per_task: per task (bit order of ``SEG_TASKS``) a list of (K, 2) normalised polygons.

    Returns:
        ``Instances`` with segments (N, max(1000, K_max + 1), 2) resampled by Ultralytics'
        ``resample_segments`` (original vertices kept, points added on the edges, as the official
        ``Instances``), boxes (N, 4) xywh around each polygon (Mosaic / RandomPerspective drop a
        polygon whose box leaves the image, as for the official segments), normalised; and the
        task ids (N, 1) float32.
    """
    polys = [p for ps in polys_per_task for p in ps]
    cls = np.array([t for t, ps in enumerate(polys_per_task) for _ in ps], np.float32).reshape(-1, 1)
    if not polys:
        return Instances(np.zeros((0, 4), np.float32), np.zeros((0, SEG_POINTS, 2), np.float32),
                         bbox_format="xywh", normalized=True), cls
    n = max(SEG_POINTS, max(len(p) for p in polys) + 1)  # as YOLODataset.update_labels_info: keep all vertices
    segments = np.stack(resample_segments([p.copy() for p in polys], n), 0).astype(np.float32)
    boxes = segments2boxes(list(segments)).astype(np.float32)
    return Instances(boxes, segments, bbox_format="xywh", normalized=True), cls


def _polygon_view(labels: dict) -> dict:
    """The polygons of ``labels`` under the keys Ultralytics' ``apply_instances`` reads."""
    return {"instances": labels["seg_instances"], "cls": labels["seg_cls"],
            **{k: labels[k] for k in ("im_file", "ori_shape") if k in labels}}


def carry_polygons(transform, labels: dict, params: dict) -> dict:
    """Move ``labels['seg_instances']`` with ``transform``'s own ``apply_instances`` and ``params``.

    ``params`` are those the transform drew for the image (mosaic layout, affine matrix, flip,
    letterbox ratio and padding), so the polygons get exactly the image's geometry through
    Ultralytics' own code (clipping and the drop of polygons pushed out of view included).
    Supports Mosaic, MixUp, RandomPerspective, RandomFlip and LetterBox.
    """
    if labels.get("seg_instances") is None:
        return labels
    view = _polygon_view(labels)
    if isinstance(transform, Mosaic):
        layout = [{**item, "labels_patch": _polygon_view(item["labels_patch"])} for item in params["layout"]]
        view = transform.apply_instances(view, {**params, "layout": layout})
    elif isinstance(transform, MixUp):
        view["mix_labels"] = [_polygon_view(params["mix_labels"][0])]
        view = transform.apply_instances(view, params)
    elif isinstance(transform, RandomFlip):
        # RandomFlip.get_params took h, w from the detection boxes' normalisation; use the polygons'
        norm, (h, w) = view["instances"].normalized, labels["img"].shape[:2]
        view = transform.apply_instances(view, {**params, "h": 1 if norm else h, "w": 1 if norm else w})
    else:  # RandomPerspective, LetterBox
        view = transform.apply_instances(view, params)
    labels["seg_instances"], labels["seg_cls"] = view["instances"], view["cls"]
    return labels


class _CarryPolygons:
    """Replaces a transform's ``apply_semantic``: moves the polygons, then the mask (picklable)."""

    def __init__(self, transform, apply_semantic):
        self.transform, self.apply_semantic = transform, apply_semantic

    def __call__(self, labels: dict, params: Optional[dict] = None) -> dict:
        return self.apply_semantic(carry_polygons(self.transform, labels, params), params)


def hook_polygon_transforms(transforms: Compose) -> Compose:
    """Make every geometric transform of an Ultralytics pipeline also move ``seg_instances``.

    Ultralytics' transforms only move ``labels['instances']``; each calls ``apply_semantic(labels,
    params)`` with the parameters it drew, which is the hook used (no subclassing of the stock
    pipeline built by ``v8_transforms``).

    Raises:
        ValueError: CutMix is on (it pastes mask rectangles; polygons have no such path).
    """
    seen = set()

    def walk(t):
        if t is None or id(t) in seen:
            return
        seen.add(id(t))
        if isinstance(t, Compose):
            for x in t.transforms:
                walk(x)
            return
        walk(getattr(t, "pre_transform", None))
        if isinstance(t, CutMix) and t.p > 0:
            raise ValueError(f"cutmix={t.p} cannot move polygon segmentation labels; set cutmix=0 or use "
                             "PNG masks (mask_format: png).")
        if isinstance(t, (Mosaic, MixUp, RandomPerspective, RandomFlip, LetterBox)):
            t.apply_semantic = _CarryPolygons(t, t.apply_semantic)

    walk(transforms)
    return transforms


def rasterise_polygons(instances: Instances, task_ids: np.ndarray, h: int, w: int, n_tasks: int) -> np.ndarray:
    """(h, w) uint8 packed mask (bit k = task k) of the polygons, filled at h x w.

    Filled with Ultralytics' ``polygon2mask`` (vertices truncated to int, ``cv2.fillPoly``), the
    official ``polygon2mask`` at mask ratio 1; normalised instances are scaled to w, h first.
    """
    instances.denormalize(w, h)
    packed = np.zeros((h, w), np.uint8)
    ids = task_ids.reshape(-1).astype(int)
    for bit in range(n_tasks):
        sel = ids == bit
        if sel.any():
            packed |= polygon2mask((h, w), instances.segments[sel], color=1) << bit
    return packed


class MultiTaskFormat(Format):
    """Ultralytics ``Format`` that also turns the packed ``semantic_mask`` into a tensor, filling the
    segmentation polygons (``seg_instances``) into it at the final working resolution first.

    Not Ultralytics' ``SemanticFormat``: that one drops the boxes (``cls``, ``instances``) the
    detection head needs and knows no polygons."""

    def apply_semantic(self, labels: dict, params: Optional[dict] = None) -> dict:
        """Convert the packed mask to an int64 tensor (B, H, W after collation).

        With polygons, their bits are filled into every pixel the mask does not mark as padding
        or border (255).
        """
        mask = labels.get("semantic_mask")
        instances, task_ids = labels.pop("seg_instances", None), labels.pop("seg_cls", None)
        if instances is not None:
            h, w = mask.shape if mask is not None else (params["h"], params["w"])
            packed = rasterise_polygons(instances, task_ids, h, w, len(SEG_TASKS))
            mask = packed if mask is None else np.where(mask == 255, np.uint8(255), packed)
        if mask is not None:
            labels["semantic_mask"] = torch.from_numpy(np.ascontiguousarray(mask)).long()
        return labels


def verify_multitask_image(args: tuple) -> tuple:
    """Scan one image for the label cache (run by Ultralytics' ``cache_labels`` in a thread pool).

    Args:
        args: ``(im_file, label_file, mask_files, mask_format, nc, class_map, single_cls, where)``;
            ``mask_files`` {task: PNG or polygon txt path}; ``nc`` None skips the class-range
            check; ``where`` {task: text naming the dataset key, for the missing-mask error}.

    Returns:
        ``(im_file, boxes (n, 5) float32, (h, w), masks, missing_tasks, label_file_found)``:
        ``masks`` {task: PNG path, or list of (K, 2) polygons}; ``missing_tasks`` the tasks
        without a polygon file (read as no foreground).

    Raises:
        ValueError: a bad label or polygon row (file:line), a missing PNG mask, or a mask whose
            size differs from its image's.
    """
    im_file, lb_file, mask_files, fmt, nc, cmap, single_cls, where = args
    found = Path(lb_file).is_file()
    rows = parse_label_rows(Path(lb_file).read_text(encoding="utf-8-sig"), lb_file, nc) if found else []
    lb = np.array(rows, dtype=np.float32).reshape(-1, 5)
    if cmap:
        lb = lb[np.array([int(c) in cmap for c in lb[:, 0]], dtype=bool)]
        lb[:, 0] = [cmap[int(c)] for c in lb[:, 0]]
    if single_cls:
        lb[:, 0] = 0
    with Image.open(im_file) as im:
        w, h = exif_size(im)  # as cv2 decodes it (EXIF orientation applied)
    masks, missing = {}, []
    for t, f in mask_files.items():
        if fmt == "polygon":
            if Path(f).is_file():
                masks[t] = read_polygons(f)
            else:  # the release has no file for an image without that class (background)
                masks[t] = []
                missing.append(t)
            continue
        if not Path(f).is_file():
            raise ValueError(f"{t} mask missing for {im_file}: expected {f} ({where[t]}).")
        with Image.open(f) as m:
            if m.size != (w, h):
                raise ValueError(f"{t} mask {f} is {m.size[0]}x{m.size[1]} but its image "
                                 f"{im_file} is {w}x{h}; masks must match their image size.")
        masks[t] = f
    return im_file, lb, (h, w), masks, tuple(missing), found


class MultiTaskDataset(YOLODataset):
    """YOLODataset with BDD100K paths, checked labels and the two segmentation masks.

    Args:
        *args, **kwargs: as ``YOLODataset`` (``img_path``, ``imgsz``, ``augment``, ``data`` ...).
    """

    format_class = MultiTaskFormat

    def __init__(self, *args, data: dict, **kwargs):
        self.cfg = resolve_layout(data)
        self.root = Path(data.get("path", "."))
        super().__init__(*args, data=data, task="detect", **kwargs)

    @property
    def polygons(self) -> bool:
        """True when the segmentation labels are polygon txt files (filled after augmentation)."""
        return self.cfg.get("mask_format", "png") == "polygon"

    def build_transforms(self, hyp=None) -> Compose:
        """Ultralytics' transforms; with polygons, hooked so they also move ``seg_instances``."""
        transforms = super().build_transforms(hyp)
        return hook_polygon_transforms(transforms) if self.polygons else transforms

    def _sibling(self, im_file: str, key: str, suffix: str) -> str:
        p = Path(im_file)
        return str(self.root / self.cfg[key] / p.parent.name / (p.stem + suffix))

    def get_label_files(self) -> List[str]:
        """Box label files: ``<labels>/<split>/<stem>.txt`` (dataset key ``labels``)."""
        self.label_files = [self._sibling(f, "labels", ".txt") for f in self.im_files]
        return self.label_files

    def _mask_files(self) -> List[Dict[str, str]]:
        suffix = ".txt" if self.polygons else ".png"
        return [{t: self._sibling(f, t, suffix) for t in SEG_TASKS} for f in self.im_files]

    def _scan_settings(self) -> tuple:
        cmap = {int(k): int(v) for k, v in (self.cfg.get("class_map") or {}).items()}
        nc = None if cmap else len(self.data["names"])
        return self.cfg.get("mask_format", "png"), nc, cmap, self.single_cls

    def get_cache_hash(self) -> str:
        """Hash of the image, label and mask files (sizes, mtimes) and the scan settings."""
        masks = [f for m in self._mask_files() for f in m.values()]
        return get_hash(self.label_files + self.im_files + masks +
                        [str((SCAN_VERSION, *self._scan_settings()))])

    def verify_args(self) -> tuple:
        """:func:`verify_multitask_image` and its per-image arguments, for Ultralytics' threaded scan."""
        fmt, nc, cmap, single_cls = self._scan_settings()
        where = {t: f"dataset key '{t}: {self.cfg[t]}', layout '{self.cfg.get('layout', 'official')}'"
                 for t in SEG_TASKS}
        return verify_multitask_image, zip(self.im_files, self.label_files, self._mask_files(),
                                           repeat(fmt), repeat(nc), repeat(cmap), repeat(single_cls),
                                           repeat(where))

    def result_to_label(self, result: tuple) -> tuple:
        """One scan result -> (label, missing, found, empty, corrupt, message) for ``cache_labels``.

        Every image counts as found (its masks are labels); one without a box file as missing.
        """
        im_file, lb, shape, masks, missing, found = result
        label = dict(im_file=im_file, shape=shape, cls=lb[:, :1], bboxes=lb[:, 1:], segments=[],
                     keypoints=None, normalized=True, bbox_format="xywh", mask_files=masks,
                     seg_missing=missing)
        return label, int(not found), 1, int(found and not len(lb)), 0, ""

    def _load_or_scan_cache(self, cache_path: Path, cache_hash: str) -> tuple:
        # own file name: the official layout shares labels/100k/<split> with the stock detector,
        # whose labels/100k/<split>.cache holds no masks
        return super()._load_or_scan_cache(cache_path.with_name(cache_path.stem + ".multitask.cache"),
                                           cache_hash)

    def get_labels(self) -> List[dict]:
        """Labels from the cached, multi-threaded scan of Ultralytics (``<labels>/<split>.multitask.cache``;
        rescanned when a file or the settings change): boxes checked (errors name file and
        line), both masks checked to exist and fit their image."""
        fmt = self.cfg.get("mask_format", "png")
        if fmt not in ("png", "polygon"):
            raise ValueError(f"mask_format {fmt!r}: use 'png' (mask images) or 'polygon' (YOLO polygon txt).")
        labels = super().get_labels()
        missing = {t: 0 for t in SEG_TASKS}
        for lb in labels:
            for t in lb.pop("seg_missing", ()):
                missing[t] += 1
        if fmt == "png" and labels:
            self.mask_encodings = {t: self._mask_encoding(t, labels) for t in SEG_TASKS}
        for t, n in missing.items():
            if n == len(labels):
                raise ValueError(f"No {t} polygon files found for {self.img_path}: expected e.g. "
                                 f"{self._sibling(labels[0]['im_file'], t, '.txt')} (dataset key "
                                 f"'{t}: {self.cfg[t]}').")
            if n:
                LOGGER.info(f"{self.prefix}{n} of {len(labels)} images have no {t} polygon file "
                            f"(read as no {t} foreground).")
        return labels

    def _mask_encoding(self, t: str, labels: List[dict]) -> MaskEncoding:
        """The encoding of task ``t``'s PNG masks: detected from the values of up to
        :data:`MASK_SAMPLES` masks spread over the split (``<t>_fg: auto``), or the explicit
        ``<t>_fg`` rule, refused when it reads most pixels opposite to the detected encoding
        (an inverted target).

        Raises:
            ValueError: undetectable values with ``auto``, or an explicit rule that inverts.
        """
        step = max(1, len(labels) // MASK_SAMPLES)
        files = [lb["mask_files"][t] for lb in labels[::step][:MASK_SAMPLES]]
        counts, colour = mask_value_counts(files)
        rule = self.cfg.get(f"{t}_fg", "auto")
        where = f"e.g. {files[0]}, dataset key '{t}: {self.cfg[t]}'"
        if rule in (None, "auto"):
            enc = detect_mask_encoding(counts, colour, t, where)
            LOGGER.info(f"{self.prefix}{t} masks: {enc.name} ({t}_fg: auto; set {t}_fg to override)")
            return enc
        enc = MaskEncoding(f"{t}_fg: {rule}", rule)
        if colour:
            raise ValueError(f"{t} masks ({where}) are colour maps, which {t}_fg: {rule} (grey "
                             f"values) cannot read: set {t}_fg: auto.")
        try:
            seen = detect_mask_encoding(counts, colour, t, where)
        except ValueError:
            return enc  # values no public encoding has: the user's rule is the only reading
        total = sum(counts.values())
        agree = sum(n for v, n in counts.items() if enc.lut[v] == seen.lut[v]) / total
        if agree < 0.5:
            raise ValueError(f"{t}_fg: {rule} reads {100 * (1 - agree):.0f} % of the {t} pixels opposite "
                             f"to their encoding, {seen.name} ({where}): the target would be "
                             f"inverted. Set {t}_fg: auto (or {seen.fg}).")
        return enc

    def load_packed_mask(self, index: int, shape: Optional[tuple] = None) -> np.ndarray:
        """Both masks of an image packed: bit 0 drivable, bit 1 lane (uint8).

        PNG masks are read at their size; polygons are filled at ``shape`` (h, w),
        default the original image size (a reference view: training and validation fill them
        after augmentation, in ``MultiTaskFormat``).
        """
        files = self.labels[index]["mask_files"]
        h, w = shape or self.labels[index]["shape"]
        packed = None
        for bit, t in enumerate(SEG_TASKS):
            if isinstance(files[t], list):  # the same fill as after augmentation (resampled, then truncated)
                fg = rasterise_polygons(*polygon_instances([files[t]]), h, w, 1)
            else:
                m = cv2.imread(files[t], cv2.IMREAD_UNCHANGED)
                if m is None:
                    raise ValueError(f"Could not read {t} mask {files[t]}.")
                fg = self.mask_encodings[t](m, files[t], t)
            packed = np.zeros(fg.shape, np.uint8) if packed is None else packed
            packed |= fg << bit
        return packed

    def get_image_and_label(self, index: int) -> Dict[str, Any]:
        """Image, boxes and the packed mask at the loaded image's size (nearest resize for PNGs).

        Polygons: the mask is zeros (it only tracks padding and borders through the transforms)
        and the polygons go in ``seg_instances`` / ``seg_cls`` (see ``polygon_instances``).
        """
        label = super().get_image_and_label(index)
        files = label.pop("mask_files", None)
        h, w = label["img"].shape[:2]
        if self.polygons:
            label["semantic_mask"] = np.zeros((h, w), np.uint8)
            label["seg_instances"], label["seg_cls"] = polygon_instances([files[t] for t in SEG_TASKS])
            return label
        mask = self.load_packed_mask(index, (h, w))
        if mask.shape != (h, w):
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
        label["semantic_mask"] = mask
        return label


def build_multitask_dataset(cfg, img_path: str, batch: int, data: dict, mode: str = "train",
                            rect: bool = False, stride: int = 32) -> MultiTaskDataset:
    """The BDD100K multi-task dataset with the arguments Ultralytics' ``build_yolo_dataset`` uses."""
    return MultiTaskDataset(
        img_path=img_path, imgsz=cfg.imgsz, batch_size=batch, augment=mode == "train", hyp=cfg,
        rect=cfg.rect or rect, cache=cfg.cache or None, single_cls=cfg.single_cls or False,
        stride=stride, pad=0.0 if mode == "train" else 0.5, prefix=f"{mode}: ",
        classes=cfg.classes, data=data, fraction=cfg.fraction if mode == "train" else 1.0)
