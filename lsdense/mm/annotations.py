"""Pre-flight over the annotation files a config names: exports of annotation tools.

COCO JSON and Pascal VOC XML written by labelme, CVAT, Roboflow, X-AnyLabeling and friends break
rules that the official releases keep, and MMDetection / pycocotools then fail deep inside a
dataset (``int(None)`` for an empty ``<difficult/>``) or, worse, evaluate wrong without a word
(pycocotools never matches a ground-truth annotation whose id is 0: the ground truth fed back as
predictions scores bbox mAP 0.949 (issue 21's file) or 0.917 (``coco_real`` with ids from 0)
instead of 1.000; cvat-ai/cvat#748, roboflow/supervision#1895). :func:`check_annotations` reads every annotation file of the
config's datasets and evaluators before any model is built and, per quirk, either

* **reads it right**, where that loses nothing: it writes a fixed copy of the file into
  ``<work_dir>/fixed_annotations/`` and points the config at the copy (annotation ids renumbered
  1..N, an unused ``_background_`` category dropped, ``iscrowd`` as 0/1, an empty ``difficult``
  as 0, ...), logging one line per kind; or
* **stops** with one line per kind of problem naming the file, the field and the fix (boxes of
  negative or zero size, annotations of missing images, ...).

All problems of all files are reported together in one :class:`PreflightError`. mmseg's PNG
masks are checked by :func:`lsdense.mm.checks.check_datasets`.
The full list, with the public threads each quirk comes from: docs/mm.md, "Files from
annotation tools".

Why a fixed copy and not a registered dataset/metric class: MMDetection users keep the stock
``CocoDataset``, ``VOCDataset`` and ``CocoMetric`` in their configs, and every mmdet tool
(``browse_dataset``, ``analyze_results``, offline pycocotools) can then read the same corrected
file; the export itself is never modified; the config mmengine dumps into the work dir names the
file that was really used. The dataset and the evaluator of a split normally name one file, so
both read the same copy and agree (a wrapper class would have to be kept in step in both).
VOC's ``XMLDataset`` reads ``<sub_data_root>/<ann_subdir>/<id>.xml``; an absolute
``ann_subdir`` pointing at the fixed XML copies does the same for VOC.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import os.path as osp
from collections import Counter, OrderedDict
from typing import Dict, List, Optional, Tuple
from xml.etree import ElementTree as ET

from .checks import (PreflightError, dataset_classes, dataset_leaves,
                     evaluators_for, framework_of, image_size, join_root, loaders_for, walk_config)

__all__ = ["check_annotations", "check_coco_file", "check_voc_split"]

FIXED_DIR = "fixed_annotations"
# the placeholder categories labelme2coco & co. write for label 0 (not the wider list that
# checks.BACKGROUND_NAMES reads from a mask's class names: COCO-Stuff has a real 'unlabeled')
_BACKGROUND = ("_background_", "__background__", "background")
_SIZE_CHECK_MAX = 10000
_IMG_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

class _Log:
    """Problems (stop) and notes (read right) of one file, one line per kind."""

    def __init__(self, path: str):
        self.path = path
        self._stop: "OrderedDict[Tuple[str, str], list]" = OrderedDict()
        self._read: "OrderedDict[Tuple[str, str], list]" = OrderedDict()

    def stop(self, field: str, what: str, example, fix: str) -> None:
        self._stop.setdefault((field, what + "; " + fix), []).append(example)

    def read(self, field: str, what: str, example) -> None:
        self._read.setdefault((field, what), []).append(example)

    @property
    def changed(self) -> bool:
        return bool(self._read)

    @staticmethod
    def _lines(path: str, table) -> List[str]:
        out = []
        for (field, text), examples in table.items():
            n = len(examples)
            ex = ", ".join(str(e) for e in examples[:3]) + (", ..." if n > 3 else "")
            head, _, fix = text.partition("; ")
            out.append(f"{path}: {field}: {n} x {head} ({ex})" + (f"; {fix}" if fix else ""))
        return out

    def problems(self) -> List[str]:
        return self._lines(self.path, self._stop)

    def notes(self) -> List[str]:
        return self._lines(self.path, self._read)


def _resolve(img_dir: str, file_name: str) -> Tuple[Optional[str], List[str]]:
    """The file name (relative to ``img_dir``) that exists: the given one, or the one image with
    the same stem in its folder or, for a path from another machine, in ``img_dir``."""
    if osp.isfile(osp.join(img_dir, file_name)):
        return file_name, []
    norm = file_name.replace("\\", "/")
    cands = []
    for rel in dict.fromkeys([norm, osp.basename(norm)]):
        folder = osp.join(img_dir, osp.dirname(rel))
        stem = osp.splitext(osp.basename(rel))[0]
        if osp.isfile(osp.join(img_dir, rel)):
            return rel, []
        if osp.isdir(folder):
            cands += [osp.join(osp.dirname(rel), f) for f in sorted(os.listdir(folder))
                      if osp.splitext(f)[0] == stem and f.lower().endswith(_IMG_EXTS)]
        if cands:
            break
    cands = list(dict.fromkeys(cands))
    return (cands[0], cands) if len(cands) == 1 else (None, cands)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _seg_fix(seg, ann_id, log: _Log):
    """A polygon list or RLE dict as pycocotools takes it, or None for no mask."""
    if isinstance(seg, dict):
        return seg
    if not isinstance(seg, list) or not seg:
        return None
    if all(_number(v) for v in seg):  # one polygon written flat (CVAT/datumaro threads)
        log.read("annotations[].segmentation", "polygon given as one flat list, wrapped", ann_id)
        seg = [seg]
    if not all(isinstance(p, list) and all(_number(v) for v in p) for p in seg):
        return seg  # left to pycocotools; not a shape we can vouch for
    kept = [p for p in seg if len(p) >= 6 and len(p) % 2 == 0]
    if len(kept) < len(seg):
        log.read("annotations[].segmentation", "polygon parts of < 3 points dropped (no area)",
                 ann_id)
    return kept or None


def _mask_area_bbox(seg, h: int, w: int) -> Tuple[Optional[float], Optional[list]]:
    try:
        from pycocotools import mask as mu

        rle = mu.frPyObjects(seg, h, w) if isinstance(seg, list) or \
            isinstance(seg.get("counts"), list) else seg
        rle = mu.merge(rle) if isinstance(rle, list) else rle
        return float(mu.area(rle)), [float(v) for v in mu.toBbox(rle)]
    except Exception:  # noqa: BLE001 - a shape pycocotools refuses: no area from the mask
        return None, None


def check_coco_file(path: str, img_dir: Optional[str] = None,
                    masks: bool = False) -> Tuple[Optional[dict], List[str], List[str]]:
    """Check one COCO instances JSON and fix what reads without loss.

    Args:
        path: the JSON file.
        img_dir: the folder ``file_name`` is relative to (the dataset's ``data_prefix.img``);
            None skips the checks on image files (an evaluator's file).
        masks: the config loads masks or evaluates ``segm``.

    Returns:
        ``(fixed, problems, notes)``: the corrected data (None when nothing needed fixing), one
        line per kind of problem (file, field, count with examples, fix) and one per kind of
        quirk read right.
    """
    log = _Log(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError):
        return None, [], []  # check_datasets names the unreadable file
    keys = [k for k in ("images", "annotations", "categories") if not isinstance(
        data.get(k) if isinstance(data, dict) else None, list)]
    if keys:
        return None, [f"{path}: {', '.join(keys)}: missing or not a list; a COCO instances "
                      f"file has images, annotations and categories lists"], []

    # categories
    cats, names, bg = [], {}, []
    used = {a.get("category_id") for a in data["annotations"] if isinstance(a, dict)}
    for c in data["categories"]:
        name = str(c.get("name", ""))
        if name != name.strip():
            log.read("categories[].name", "names with leading/trailing spaces stripped",
                     repr(name))
            c["name"] = name = name.strip()
        if name.lower() in _BACKGROUND:
            if c.get("id") in used:
                log.stop("categories[].name", f"annotations use the '{name}' category",
                         c.get("id"), "a background class is not an object: delete those "
                         "annotations or rename the category")
            else:
                log.read("categories", f"unused '{name}' category dropped (labelme2coco "
                         f"writes one; detectors have their own background)", c.get("id"))
                bg.append(c.get("id"))
                continue
        if name in names:
            log.stop("categories[].name", "names given to two category ids",
                     f"{name!r}: {names[name]} and {c.get('id')}",
                     "merge them into one category")
        names[name] = c.get("id")
        cats.append(c)
    data["categories"] = cats
    cat_ids = {c.get("id") for c in cats}
    if len(cat_ids) < len(cats):
        log.stop("categories[].id", "repeated category ids", sorted(
            i for i in cat_ids if [c.get("id") for c in cats].count(i) > 1), "give each "
            "category its own id")

    # images
    id_map, imgs, seen, unsized = {}, {}, set(), set()
    types = {type(im.get("id")).__name__ for im in data["images"]}
    digits = all(isinstance(im.get("id"), str) and im["id"].isdigit() for im in data["images"])
    # an image's size on disk is read (header only, ~0.5 ms) for every image of a file of up to
    # _SIZE_CHECK_MAX images (annotation-tool exports); above, only where the file lacks it
    check_size = len(data["images"]) <= _SIZE_CHECK_MAX
    for im in data["images"]:
        iid = im.get("id")
        if digits:
            log.read("images[].id", "image ids written as digit strings read as integers", iid)
            id_map[iid] = im["id"] = int(iid)
            iid = im["id"]
        if iid in seen:
            log.stop("images[].id", "repeated image ids", iid,
                     "give each image its own id (pycocotools keeps only the last)")
        seen.add(iid)
        imgs[iid] = im
        fname = im.get("file_name")
        if not isinstance(fname, str) or not fname:
            log.stop("images[].file_name", "images without file_name", iid,
                     "add the image's file name")
            continue
        size = None
        if img_dir is not None:
            found, cands = _resolve(img_dir, fname)
            if found is None:
                if cands:  # without candidates check_datasets names the missing image
                    log.stop("images[].file_name", "names matching several images on disk",
                             f"{fname}: {cands}", "write the file's exact name")
                continue
            if found != fname:
                log.read("images[].file_name", "names that differ from the one image on disk "
                         "(extension or folder) read as that file", f"{fname} -> {found}")
                im["file_name"] = found
        w, h = im.get("width"), im.get("height")
        known = _number(w) and _number(h) and w > 0 and h > 0
        if img_dir is not None and (check_size or not known):
            size = image_size(osp.join(img_dir, im["file_name"]))
        if not known:
            if size is None:
                log.stop("images[].width/height", "images without width/height", fname,
                         "add them (in pixels)")
                continue
            log.read("images[].width/height", "missing width/height read from the image file",
                     fname)
            im["width"], im["height"] = size
        elif size is not None and tuple(size) not in ((w, h), (h, w)):
            unsized.add(iid)  # its boxes are not checked against a size that is wrong
            log.stop("images[].width/height", "images whose size on disk differs from the file",
                     f"{fname}: {size[0]}x{size[1]} on disk, {w}x{h} in the file",
                     "the boxes belong to the other size: re-export the annotations or the "
                     "images at one size")
    if not digits and types - {"int"} and types != {"str"}:
        log.stop("images[].id", "image ids of mixed types", sorted(types),
                 "write every image id as an integer")

    # annotations
    anns = data["annotations"]
    ann_ids = [a.get("id") for a in anns]
    counts = Counter(ann_ids)
    renumber = any(not isinstance(i, int) or isinstance(i, bool) or i <= 0 for i in ann_ids) \
        or len(counts) < len(ann_ids)
    for k, a in enumerate(anns):
        aid = a.get("id")
        if renumber:
            if not isinstance(aid, int) or isinstance(aid, bool) or aid <= 0 \
                    or counts[aid] > 1:
                log.read("annotations[].id", "ids of 0, repeated or not positive integers "
                         "(pycocotools never matches id 0); all renumbered 1..N", aid)
            a["id"] = k + 1
        iid = id_map.get(a.get("image_id"), a.get("image_id"))
        a["image_id"] = iid
        im = imgs.get(iid)
        if im is None:
            log.stop("annotations[].image_id", "annotations of image ids not in images",
                     f"id {aid} -> image {iid}", "add those images or delete the annotations")
            continue
        if a.get("category_id") not in cat_ids:
            if a.get("category_id") not in bg:
                log.stop("annotations[].category_id", "category ids not in categories",
                         f"id {aid}: {a.get('category_id')}", "add the category or fix the id")
            continue
        crowd = a.get("iscrowd", None)
        if crowd not in (0, 1) or isinstance(crowd, bool):
            if crowd is None or isinstance(crowd, bool) or crowd in ("0", "1"):
                log.read("annotations[].iscrowd", "iscrowd missing or not 0/1 read as 0/1",
                         f"id {aid}: {crowd!r}")
                a["iscrowd"] = int(crowd or 0) if not isinstance(crowd, str) else int(crowd)
            else:
                log.stop("annotations[].iscrowd", "iscrowd values that are not 0/1",
                         f"id {aid}: {crowd!r}", "write 0 (object) or 1 (crowd region)")
        W, H = (None, None) if iid in unsized else (im.get("width"), im.get("height"))
        if "segmentation" in a:
            seg = _seg_fix(a["segmentation"], aid, log)
            if seg is None:
                if masks:
                    log.stop("annotations[].segmentation", "annotations without a mask "
                             "(segmentation [] or no polygon)", f"id {aid}",
                             "this config loads masks: annotate polygons, or train a box model")
                else:
                    log.read("annotations[].segmentation", "empty segmentation of a boxes-only "
                             "export dropped", f"id {aid}")
                    del a["segmentation"]
            else:
                a["segmentation"] = seg
                if isinstance(seg, dict) and _number(W) and \
                        list(seg.get("size", [])) != [H, W]:
                    log.stop("annotations[].segmentation.size", "RLE masks whose size is not "
                             "the image's [height, width]", f"id {aid}: {seg.get('size')} vs "
                             f"{[H, W]}", "re-export the masks at the image size")
        elif masks:
            log.stop("annotations[].segmentation", "annotations without a mask", f"id {aid}",
                     "this config loads masks: annotate polygons, or train a box model")
        seg = a.get("segmentation")
        bbox = a.get("bbox")
        if bbox is None and seg is not None and _number(W):
            _, bbox = _mask_area_bbox(seg, H, W)
            if bbox is not None:
                log.read("annotations[].bbox", "missing bbox taken from the mask", f"id {aid}")
                a["bbox"] = bbox
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(_number, bbox))):
            log.stop("annotations[].bbox", "bbox missing or not 4 numbers",
                     f"id {aid}: {bbox!r}", "write [x, y, width, height] in pixels")
            continue
        x, y, bw, bh = bbox
        if bw < 0 or bh < 0:
            log.stop("annotations[].bbox", "boxes of negative width/height",
                     f"id {aid}: {bbox}", "COCO bbox is [x, y, width, height], not "
                     "[x1, y1, x2, y2]: re-export or correct them")
            continue
        if bw == 0 or bh == 0:
            log.stop("annotations[].bbox", "boxes of zero width/height (nothing inside)",
                     f"id {aid}: {bbox}", "delete or redraw them")
            continue
        if _number(W) and _number(H):
            if min(x + bw, W) <= max(x, 0) or min(y + bh, H) <= max(y, 0):
                log.stop("annotations[].bbox", "boxes wholly outside their image",
                         f"id {aid}: {bbox} in {W}x{H}", "delete or redraw them")
                continue
        area = a.get("area")
        if not (_number(area) and area > 0):
            new = _mask_area_bbox(seg, H, W)[0] if seg is not None and _number(W) else None
            new = new if new else float(bbox[2] * bbox[3])
            log.read("annotations[].area", "area 0 or missing (mmdet drops such annotations) "
                     "computed from the mask, else the box", f"id {aid}")
            a["area"] = new
    return (data if log.changed else None), log.problems(), log.notes()


def _text(el) -> Optional[str]:
    return None if el is None or el.text is None else el.text.strip()


def check_voc_split(ann_file: str, sub_root: str, classes, ann_subdir: str = "Annotations",
                    img_subdir: str = "JPEGImages") -> Tuple[Dict[str, bytes], List[str],
                                                             List[str]]:
    """Check the XML files of one VOC image-set list and fix what reads without loss.

    Args:
        ann_file: the ``ImageSets/Main/*.txt`` list of image ids.
        sub_root: ``data_root`` joined with ``data_prefix.sub_data_root``.
        classes: the dataset's class names (objects of other names are skipped, as mmdet does).
        ann_subdir, img_subdir: as ``XMLDataset``'s arguments.

    Returns:
        ``(fixed, problems, notes)``: when anything was read right, every XML of the list by
        image id (the fixed ones rewritten), else ``{}``; then the problem and note lines.
    """
    log = _Log(osp.join(sub_root, ann_subdir))
    with open(ann_file, encoding="utf-8") as f:
        ids = [ln.strip() for ln in f if ln.strip()]
    lower = {c.lower(): c for c in classes}
    out: Dict[str, bytes] = {}
    for img_id in ids:
        xml = osp.join(sub_root, ann_subdir, f"{img_id}.xml")
        jpg = osp.join(sub_root, img_subdir, f"{img_id}.jpg")
        where = f"{img_id}.xml"
        if not osp.isfile(jpg):
            other = [f for f in (os.listdir(osp.dirname(jpg)) if osp.isdir(osp.dirname(jpg))
                                 else []) if osp.splitext(f)[0] == img_id]
            log.stop(img_subdir, "images without <id>.jpg", other[0] if other else img_id,
                     "mmdet's XMLDataset reads <id>.jpg only: convert them to JPEG")
        try:
            tree = ET.parse(xml)
        except (OSError, ET.ParseError) as err:
            log.stop("xml", "files that do not parse", f"{where}: {err}", "repair or re-export")
            continue
        root = tree.getroot()
        size = root.find("size")
        w, h = (_text(size.find("width")), _text(size.find("height"))) if size is not None \
            else (None, None)
        try:
            W, H = int(float(w)), int(float(h))
        except (TypeError, ValueError):
            W = H = 0
        if size is not None and (W <= 0 or H <= 0):
            real = image_size(jpg)
            if real is None:
                log.stop("size", "<size> empty or 0", where, "write the image's width/height")
            else:
                log.read("size", "<size> empty or 0 read from the image file", where)
                W, H = real
                for tag, v in (("width", W), ("height", H)):
                    (size.find(tag) if size.find(tag) is not None
                     else ET.SubElement(size, tag)).text = str(v)
        elif size is None:
            W = H = 0  # mmdet reads the image for its size
        for k, obj in enumerate(root.findall("object")):
            here = f"{where} object {k}"
            name_el = obj.find("name")
            name = _text(name_el)
            if not name:
                log.stop("object/name", "objects without a <name>", here,
                         "add the class name or delete the object")
                continue
            if name != name_el.text:
                log.read("object/name", "names with leading/trailing spaces stripped",
                         repr(name_el.text))
                name_el.text = name
            if name not in classes:
                if name.lower() in lower:
                    log.stop("object/name", "names that differ from a class in case only",
                             f"{here}: {name!r} vs {lower[name.lower()]!r}",
                             "rename them (or the metainfo class)")
                continue  # another class: skipped by mmdet as intended
            diff = obj.find("difficult")
            if diff is not None and _text(diff) not in ("0", "1"):
                t = (_text(diff) or "").lower()
                value = {"": 0, "false": 0, "true": 1, "0.0": 0, "1.0": 1}.get(t)
                if value is None:
                    log.stop("object/difficult", "values that are not 0/1", f"{here}: {t!r}",
                             "write 0 or 1")
                else:
                    log.read("object/difficult", "empty or non-integer <difficult> read as 0/1",
                             f"{here}: {diff.text!r}")
                    diff.text = str(value)
            box = obj.find("bndbox")
            try:
                vals = [float(_text(box.find(t))) for t in ("xmin", "ymin", "xmax", "ymax")]
            except (AttributeError, TypeError, ValueError):
                log.stop("object/bndbox", "boxes missing or not numeric", here,
                         "write xmin, ymin, xmax, ymax in pixels")
                continue
            x1, y1, x2, y2 = vals
            if x1 > x2 or y1 > y2:
                log.stop("object/bndbox", "boxes with xmin > xmax or ymin > ymax",
                         f"{here}: {vals}", "swap the corners")
                continue
            if int(x2) - int(x1) <= 0 or int(y2) - int(y1) <= 0:  # mmdet truncates to int
                log.stop("object/bndbox", "boxes of zero width/height", f"{here}: {vals}",
                         "delete or redraw them")
                continue
            if W and H and (x2 <= 1 or y2 <= 1 or x1 >= W or y1 >= H):
                log.stop("object/bndbox", "boxes wholly outside their image",
                         f"{here}: {vals} in {W}x{H}", "delete or redraw them")
        out[img_id] = ET.tostring(root, encoding="utf-8")
    return (out if log.changed else {}), log.problems(), log.notes()


def _write(path: str, payload: bytes) -> None:
    """Atomic write: every rank of a distributed run writes the same bytes."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(payload)
    os.replace(tmp, path)


def _tag(path: str) -> str:
    return hashlib.sha1(osp.abspath(path).encode()).hexdigest()[:8]


def _needs_masks(ds: dict, evaluators) -> bool:
    pipe = any(d.get("type") == "LoadAnnotations" and d.get("with_mask")
               for _, d in walk_config(ds.get("pipeline", [])))
    segm = any("segm" in (m if isinstance(m, (list, tuple)) else [m])
               for e in evaluators for m in [e.get("metric", "bbox")])
    return pipe or segm


def _is_a(cfg: dict, registry: str, base: str, exclude: str = "") -> bool:
    """``cfg['type']`` names a subclass of mmdet's ``base`` (and not of ``exclude``)."""
    import mmdet.datasets
    import mmdet.evaluation
    from mmdet import registry as reg

    kind = cfg.get("type")
    cls = getattr(reg, registry).get(kind) if isinstance(kind, str) else kind
    mod = mmdet.datasets if registry == "DATASETS" else mmdet.evaluation
    return isinstance(cls, type) and issubclass(cls, getattr(mod, base)) and not (
        exclude and issubclass(cls, getattr(mod, exclude)))


def check_annotations(cfg, mode: str = "train", problems: Optional[List[str]] = None) -> None:
    """Check (and where lossless, fix) every annotation file of an mmdet config's datasets
    and evaluators; see the module docstring.

    Fixed copies go to ``<cfg.work_dir>/fixed_annotations/`` and the config is changed in
    place to read them (``ann_file`` of COCO datasets and evaluators naming that file,
    ``ann_subdir`` of VOC datasets). Paths that do not exist are left to
    :func:`lsdense.mm.checks.check_datasets`, which names them, as it checks mmseg's PNG
    masks.

    Args:
        problems: where to add one line per kind of problem (``preflight`` passes its list);
            ``None`` raises them.

    Raises:
        PreflightError: one line per kind of problem, all files together (``problems`` None).
    """
    from mmengine.logging import print_log

    if framework_of(cfg) == "mmseg":
        return  # PNG masks: checks.check_datasets reads them (colours, sizes, label values)
    out_dir = osp.join(cfg.get("work_dir") or "./work_dirs", FIXED_DIR)
    evaluators = [ev for _, ev in evaluators_for(cfg, mode)]
    found: List[str] = []
    notes: List[str] = []
    done: Dict[str, Optional[str]] = {}  # checked COCO file -> its fixed copy (None: as is)

    def coco(path: str, img_dir: Optional[str], masks: bool) -> Optional[str]:
        key = osp.abspath(path)
        if key in done:
            return done[key]
        fixed, p, n = check_coco_file(path, img_dir, masks)
        found.extend(p)
        notes.extend(n)
        done[key] = None
        if fixed is not None:
            stem = osp.splitext(osp.basename(path))[0]
            done[key] = osp.abspath(osp.join(out_dir, f"{stem}_{_tag(path)}.json"))
            _write(done[key], json.dumps(fixed).encode())
        return done[key]

    for loader in loaders_for(cfg, mode):
        for key, ds in dataset_leaves(cfg[loader]["dataset"], f"{loader}.dataset"):
            root, ann = ds.get("data_root"), ds.get("ann_file")
            prefix = ds.get("data_prefix") or {}
            if not ann or not osp.isfile(join_root(root, ann)):
                continue
            path = join_root(root, ann)
            if path.endswith(".json") and _is_a(ds, "DATASETS", "CocoDataset",
                                                "CocoPanopticDataset"):
                img_dir = join_root(root, prefix.get("img", "")) if root or prefix.get("img") else ""
                fixed = coco(path, img_dir if osp.isdir(img_dir or ".") else None,
                             _needs_masks(ds, evaluators))
                if fixed is not None:
                    ds["ann_file"] = fixed
            elif _is_a(ds, "DATASETS", "XMLDataset"):
                sub = join_root(root, prefix.get("sub_data_root", ""))
                ann_subdir = ds.get("ann_subdir", "Annotations")
                if not osp.isdir(osp.join(sub, ann_subdir)):
                    continue
                classes = dataset_classes(ds, "mmdet") or []
                voc_key = f"{osp.abspath(path)}|{osp.abspath(osp.join(sub, ann_subdir))}|{classes}"
                if voc_key not in done:  # a list read by two loaders is checked once
                    fixed, p, n = check_voc_split(path, sub, classes, ann_subdir,
                                                  ds.get("img_subdir", "JPEGImages"))
                    found.extend(p)
                    notes.extend(n)
                    done[voc_key] = None
                    if fixed:
                        done[voc_key] = osp.abspath(osp.join(
                            out_dir, f"{osp.basename(osp.normpath(sub))}_"
                                     f"{_tag(osp.join(sub, ann_subdir))}"))
                        for img_id, payload in fixed.items():
                            _write(osp.join(done[voc_key], f"{img_id}.xml"), payload)
                if done[voc_key] is not None:
                    ds["ann_subdir"] = done[voc_key]
    for ev in evaluators:
        ann = ev.get("ann_file")
        if isinstance(ann, str) and ann.endswith(".json") and osp.isfile(ann) and \
                _is_a(ev, "METRICS", "CocoMetric"):
            fixed = coco(ann, None, "segm" in str(ev.get("metric", "")))
            if fixed is not None:
                ev["ann_file"] = fixed
    for line in notes:
        print_log(f"lsdense pre-flight read: {line} -> fixed copy in {out_dir}", logger="current")
    if problems is not None:
        problems.extend(found)
    elif found:
        raise PreflightError("\n".join(found))
