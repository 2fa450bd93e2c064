"""Pre-flight checks: clear errors for a config before any model or data is built.

``preflight(cfg, mode, checkpoint=...)`` checks everything the config names and reports
every problem at once, one line each naming the config key, the value and the fix:

* the config imports the lsdense module its framework needs (``custom_imports``); lsdense
  backbones get only arguments they take (a switched type without ``_delete_=True``);
  every ``arch`` exists; the neck (or, without a neck, each mmseg head) takes the channels
  the backbone really returns;
* every dataset of the run's loaders: root, annotation file and data folders exist
  (with the command that makes toy data), annotation files parse, the images they list
  exist and are not empty; mmseg folders: the image / seg-map suffixes match the files,
  every image has its map, ``reduce_zero_label`` agrees between dataset and
  ``LoadAnnotations`` and with the label values; the evaluators' ``ann_file`` exists
  and covers the dataset's images;
* the class list against the data (COCO categories, VOC object names) and every head's
  ``num_classes``; a fix naming every dataset and head key in one option string;
* checkpoints: ``--checkpoint``, ``load_from`` and every ``init_cfg`` file exist (a URL is
  downloaded into torch.hub's cache, or named with the cache path offline), and a model
  checkpoint's keys and shapes fit the model (built on the meta device: no weights).
"""
from __future__ import annotations

import logging

import copy
import inspect
import json
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple
from xml.etree import ElementTree as ET

__all__ = ["PreflightError", "DatasetNotFoundError", "framework_of", "preflight",
           "check_custom_imports", "check_archs", "check_neck_channels", "check_datasets",
           "check_num_classes", "check_cpu_bf16", "check_evaluators", "check_backbone_args",
           "check_checkpoint_files", "check_checkpoint_fit", "checkpoint_fit", "lsdense_types"]
# toy-data kind per dataset type (tools/make_toy_data.py KIND --out DATA_ROOT)
_TOY_KIND = {"CocoDataset": "coco", "VOCDataset": "voc", "ADE20KDataset": "ade20k"}
_WRAPPERS = ("dataset", "datasets")


class PreflightError(ValueError):
    """A config or dataset problem found before training or testing starts."""


class DatasetNotFoundError(PreflightError, FileNotFoundError):
    """A dataset path of the config does not exist."""


def framework_of(cfg) -> str:
    """``'mmdet'`` or ``'mmseg'``, from the config's ``default_scope``."""
    scope = cfg.get("default_scope")
    if scope not in ("mmdet", "mmseg"):
        raise PreflightError(f"Config default_scope is {scope!r}; lsdense tools run mmdet or "
                             f"mmseg configs (inherit an mmdet::/mmseg:: base config).")
    return scope


def lsdense_types() -> Dict[str, Optional[type]]:
    """The lsdense types a config may name: the backbone classes (``backbones.BACKBONES``,
    which carry their family) and ``LSNetFPN`` (mmdet only: named, not imported, so that an
    mmseg-only installation runs the checks)."""
    from .backbones import BACKBONES

    return {**{c.__name__: c for c in BACKBONES}, "LSNetFPN": None}


def _backbone_type(d: dict) -> Optional[type]:
    """The lsdense backbone class a config dict names, else None."""
    cls = lsdense_types().get(d.get("type")) if isinstance(d.get("type"), str) else None
    return cls if cls is not None and hasattr(cls, "family") else None


def walk_config(node, path: str = "model") -> Iterator[Tuple[str, dict]]:
    """Every dict (with its dotted path) inside a config node."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk_config(v, f"{path}.{k}")
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from walk_config(v, f"{path}[{i}]")


def check_custom_imports(cfg, filename: str = "the config") -> None:
    """A config that uses lsdense types must import ``lsdense.<framework>``."""
    framework = framework_of(cfg)
    types = lsdense_types()
    used = sorted({d["type"] for _, d in walk_config(cfg.get("model", {}))
                   if isinstance(d.get("type"), str) and d["type"] in types})
    if not used:
        return
    imports = (cfg.get("custom_imports") or {}).get("imports", [])
    imports = [imports] if isinstance(imports, str) else list(imports)
    needed = f"lsdense.{framework}"
    if needed not in imports:
        raise PreflightError(
            f"{filename} uses {', '.join(used)} but does not import {needed}, which registers "
            f"them in {framework}'s MODELS registry. Add to the config: "
            f"custom_imports = dict(imports=['{needed}'], allow_failed_imports=False)")


def check_archs(cfg) -> None:
    """Every lsdense backbone in the model names an existing ``arch``."""

    for path, d in walk_config(cfg.get("model", {})):
        cls = _backbone_type(d)
        if cls is None:
            continue
        arch = d.get("arch") or getattr(cls, "default_arch", None) or \
            inspect.signature(cls.__init__).parameters["arch"].default
        try:
            cls._core_args(arch)
        except (ValueError, TypeError) as err:
            raise PreflightError(f"{path}: {err}") from None


def _backbone_channels(backbone: dict, framework: str, path: str) -> List[int]:
    """``out_channels`` of the backbone ``backbone`` configures (built without weights).

    Built, not read from the registry, because the build also validates the config's
    arguments (``out_indices``, ``frozen_stages``, ...) with the model's own messages.
    """
    if framework == "mmdet":
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    try:
        return list(MODELS.build({**backbone, "init_cfg": None}).out_channels)
    except (ValueError, TypeError) as err:  # bad out_indices, frozen_stages, ... named by the model
        raise PreflightError(f"{path}.backbone: {err}") from None


def _channel_error(path: str, consumer: dict, configured, backbone: dict, real: List[int],
                   expected, fix_key: str) -> PreflightError:
    arch = backbone.get("arch")
    shown = f"{backbone['type']}" + (f" arch={arch!r}" if arch is not None else "")
    if "out_indices" in backbone:
        shown += f" out_indices={tuple(backbone['out_indices'])}"
    return PreflightError(
        f"{path} ({consumer.get('type')}) has in_channels={configured}, but the backbone "
        f"({shown}) returns maps with {real} channels, so it needs {expected}. Set "
        f"{fix_key}={expected} (after swapping a backbone, the neck's in_channels must follow), "
        f"or change the backbone's out_indices.")


def check_neck_channels(cfg) -> None:
    """What reads an lsdense backbone's maps expects their real channel counts.

    The neck's ``in_channels`` (a list: one entry per backbone output) must equal
    the backbone's ``out_channels``; without a neck, each mmseg head's
    ``in_channels`` must equal the channels of the maps its ``in_index`` picks.
    The backbone is built (no weights) to read its real ``out_channels``.
    """
    framework = framework_of(cfg)
    for path, d in walk_config(cfg.get("model", {})):
        backbone = d.get("backbone")
        if not (isinstance(backbone, dict) and _backbone_type(backbone) is not None):
            continue
        neck = d.get("neck")
        if neck is not None:
            key = f"{path}.neck"
            if isinstance(neck, (list, tuple)):  # a sequence of necks: the first reads the backbone
                neck, key = neck[0], f"{key}[0]"
            channels = neck.get("in_channels") if isinstance(neck, dict) else None
            if isinstance(channels, (list, tuple)):
                real = _backbone_channels(backbone, framework, path)
                if list(channels) != real:
                    raise _channel_error(key, neck, list(channels), backbone, real, real,
                                         f"{key}.in_channels")
            continue
        real = None
        for name in ("decode_head", "auxiliary_head"):  # mmseg heads reading the backbone
            heads = d.get(name)
            heads = heads if isinstance(heads, (list, tuple)) else [heads]
            for i, head in enumerate(heads):
                if not isinstance(head, dict) or "in_index" not in head or "in_channels" not in head:
                    continue
                key = f"{path}.{name}" + (f"[{i}]" if len(heads) > 1 else "")
                real = real or _backbone_channels(backbone, framework, path)
                index, channels = head["in_index"], head["in_channels"]
                try:
                    expected = [real[j] for j in index] if isinstance(index, (list, tuple)) \
                        else real[index]
                except IndexError:
                    raise PreflightError(
                        f"{key}.in_index={index} but the backbone returns {len(real)} maps "
                        f"(channels {real}); use indices 0..{len(real) - 1}.") from None
                given = list(channels) if isinstance(channels, (list, tuple)) else channels
                if given != expected:
                    raise _channel_error(key, head, given, backbone, real, expected,
                                         f"{key}.in_channels")


def dataset_leaves(node: dict, path: str) -> Iterator[Tuple[str, dict]]:
    """Leaf dataset configs inside wrappers (RepeatDataset, ConcatDataset, ...)."""
    inner = [(k, node[k]) for k in _WRAPPERS if k in node]
    if not inner:
        yield path, node
        return
    for key, sub in inner:
        if isinstance(sub, (list, tuple)):
            for i, s in enumerate(sub):
                yield from dataset_leaves(s, f"{path}.{key}[{i}]")
        else:
            yield from dataset_leaves(sub, f"{path}.{key}")


def loaders_for(cfg, mode: str) -> List[str]:
    names = ["train_dataloader", "val_dataloader"] if mode == "train" else ["test_dataloader"]
    return [n for n in names if cfg.get(n)]


def _all_datasets(cfg) -> List[Tuple[str, dict]]:
    """Every leaf dataset of the train, val and test loaders (what a fix must name so that
    training and testing both run)."""
    return [kd for n in ("train_dataloader", "val_dataloader", "test_dataloader") if cfg.get(n)
            for kd in dataset_leaves(cfg[n]["dataset"], f"{n}.dataset")]


def evaluators_for(cfg, mode: str) -> List[Tuple[str, dict]]:
    """``(key, metric config)`` of the evaluators the run uses (a list evaluator is indexed)."""
    out = []
    for name in (["val_evaluator"] if mode == "train" else ["test_evaluator"]):
        ev = cfg.get(name)
        if isinstance(ev, (list, tuple)):
            out += [(f"{name}.{i}", e) for i, e in enumerate(ev) if isinstance(e, dict)]
        elif isinstance(ev, dict):
            out.append((name, ev))
    return out


def _option_key(key: str) -> str:
    """A report key (``...datasets[0]``) as ``--cfg-options`` spells it (``...datasets.0``)."""
    return key.replace("[", ".").replace("]", "")


def join_root(root: Optional[str], p: str) -> str:
    return p if not root or osp.isabs(p) else osp.join(root, p)


def _missing(path: str, what: str, key: str, ds: dict) -> str:
    kind = _TOY_KIND.get(ds.get("type"))
    root = ds.get("data_root") or osp.dirname(path)
    # toy data only where there is no data: never into an existing dataset folder
    hint = (f"Make the toy {kind} data there with `python tools/make_toy_data.py {kind} "
            f"--out {root}`, or " if kind and what == "data_root" else "")
    field = "data_root" if what == "data_root" else what
    fix = f"{hint}point the config at your copy: --cfg-options {_option_key(key)}.{field}=..."
    return f"Dataset path not found: {path} ({what} of {key}). {fix[0].upper()}{fix[1:]}"


def _read_annotation(path: str, ds: dict, key: str) -> Tuple[Optional[List[str]], List[str], dict]:
    """Parse an annotation file; return its category names (COCO), the images it lists and
    the object names with their counts (VOC XML)."""
    prefix = ds.get("data_prefix") or {}
    try:
        if path.endswith(".json"):
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if not isinstance(data, dict) or "images" not in data:
                raise ValueError("not a COCO-style file (no 'images' list)")
            img_dir = join_root(ds.get("data_root"), prefix.get("img", ""))
            images = [osp.join(img_dir, im["file_name"]) for im in data["images"]]
            return [c["name"] for c in data.get("categories", [])], images, {}
        with open(path, encoding="utf-8") as f:  # VOC image-set list
            ids = [ln.strip() for ln in f if ln.strip()]
        images, names = [], {}
        if ds.get("type") == "VOCDataset" and ids:
            sub = join_root(ds.get("data_root"), prefix.get("sub_data_root", ""))
            for i in ids:
                xml = osp.join(sub, "Annotations", f"{i}.xml")
                if not osp.isfile(xml):
                    continue  # the image check below names the sample
                for obj in ET.parse(xml).getroot().iter("object"):
                    name = (obj.findtext("name") or "").strip()
                    names[name] = names.get(name, 0) + 1
            images = [osp.join(sub, "JPEGImages", f"{i}.jpg") for i in ids]
        return None, images, names
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError, ET.ParseError) as err:
        raise PreflightError(f"Annotation file unreadable: {path} ({key}.ann_file): "
                             f"{type(err).__name__}: {err}") from None


def _check_images(images: List[str], key: str, problems: List[str]) -> None:
    """Every listed image exists and is not empty (a stat each; decoding errors are
    reported by file name during the run). One line per kind, naming the first file."""
    missing, empty = [], []
    for path in images:
        try:
            if os.stat(path).st_size == 0:
                empty.append(path)
        except FileNotFoundError:
            missing.append(path)
    if missing:
        problems.append(f"Image missing: {missing[0]}{_more(len(missing))} (listed by {key}). "
                        f"Restore them or remove them from the annotations.")
    if empty:
        problems.append(f"Image file is empty (corrupt): {empty[0]}{_more(len(empty))} (listed by "
                        f"{key}). Replace them or remove them from the annotations.")


_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _init_default(ds: dict, framework: str, name: str, fallback):
    """A dataset argument as the built dataset will see it: the config's value, else the
    default of the dataset class's ``__init__`` (e.g. ADE20KDataset: ``reduce_zero_label=True``)."""
    if name in ds:
        return ds[name]
    cls = _dataset_class(ds, framework)
    for klass in (cls.__mro__ if cls is not None else ()):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        param = inspect.signature(init).parameters.get(name)
        if param is not None and param.default is not inspect.Parameter.empty:
            return param.default
    return fallback


def _files(folder: str) -> List[str]:
    """Files under ``folder``, relative, recursive (mmseg lists them recursively)."""
    out = []
    for root, _, names in os.walk(folder):
        out += [osp.relpath(osp.join(root, n), folder) for n in names]
    return sorted(out)


def _suffix_problem(key: str, field: str, suffix: str, folder: str, files: List[str]) -> Optional[str]:
    others = sorted({osp.splitext(f)[1] for f in files if not f.endswith(suffix)
                     and osp.splitext(f)[1].lower() in _IMAGE_SUFFIXES})
    n_read = sum(f.endswith(suffix) for f in files)
    n_other = sum(osp.splitext(f)[1] in others for f in files)
    if not others:
        return None
    if n_read == 0:
        return (f"{key}.{field}={suffix!r} but {folder} holds no {suffix} file: its "
                f"{n_other} files end in {', '.join(others)}. Set --cfg-options "
                f"{_option_key(key)}.{field}={others[0]}")
    return (f"{key}.{field}={suffix!r}: {n_other} files of {folder} ending in "
            f"{', '.join(others)} would be skipped silently ({n_read} read). Convert them to "
            f"{suffix}, or keep one suffix per folder and set {_option_key(key)}.{field}.")


def _check_seg_settings(key: str, ds: dict, framework: str, problems: List[str]) -> None:
    """Every mmseg dataset (folder-listed or with an ``ann_file``): its class list is a subset
    of its type's own, and ``reduce_zero_label`` agrees between the dataset and its
    ``LoadAnnotations`` (mmseg would stop when the dataset is built, or at the first sample)."""
    known = (getattr(_dataset_class(ds, framework), "METAINFO", None) or {}).get("classes")
    absent = [c for c in (ds.get("metainfo") or {}).get("classes") or [] if known and c not in known]
    if absent:  # mmseg: "ValueError: new classes ... is not a subset" when the dataset is built
        problems.append(f"{key}.metainfo.classes: {absent[:5]} are not {ds.get('type')} classes "
                        f"(it keeps only a subset of its own). For your own class list use "
                        f"type='BaseSegDataset' with img_suffix/seg_map_suffix (docs/mm.md, "
                        f"'Your own classes').")
    rzl = bool(_init_default(ds, framework, "reduce_zero_label", False))
    for i, t in enumerate(ds.get("pipeline") or []):
        if isinstance(t, dict) and t.get("type") == "LoadAnnotations" \
                and t.get("reduce_zero_label") is not None and bool(t["reduce_zero_label"]) != rzl:
            problems.append(
                f"{key}.pipeline[{i}] (LoadAnnotations) has reduce_zero_label="
                f"{t['reduce_zero_label']} but the dataset reads reduce_zero_label={rzl} (mmseg "
                f"stops at the first sample). Set both the same: --cfg-options "
                f"{_option_key(key)}.reduce_zero_label={t['reduce_zero_label']}, or drop it from "
                f"LoadAnnotations (it then follows the dataset).")


def _check_seg_dataset(key: str, ds: dict, framework: str, problems: List[str],
                       checked: Optional[set] = None) -> None:
    """mmseg folder datasets: the image / seg-map suffixes match the files on disk, every
    image has its seg map (in class ids, at its image's size), and the label values fit the
    classes and ``reduce_zero_label`` (up to 20 maps read). The files of folders that
    ``checked`` already holds, read the same way (train and val reading one folder), are not
    reported again; the suffix lines name every dataset key (each needs its fix)."""
    prefix = ds.get("data_prefix") or {}
    img_dir = join_root(ds.get("data_root"), prefix.get("img_path", ""))
    seg_dir = join_root(ds.get("data_root"), prefix["seg_map_path"]) \
        if prefix.get("seg_map_path") else None
    img_suffix = _init_default(ds, framework, "img_suffix", ".jpg")
    seg_suffix = _init_default(ds, framework, "seg_map_suffix", ".png")
    imgs = _files(img_dir)
    found = _suffix_problem(key, "img_suffix", img_suffix, img_dir, imgs)
    if found:
        problems.append(found)
    segs = _files(seg_dir) if seg_dir is not None and osp.isdir(seg_dir) else None
    found = segs is not None and _suffix_problem(key, "seg_map_suffix", seg_suffix, seg_dir, segs)
    if found and not any(f.endswith(seg_suffix) for f in segs):
        problems.append(found)
        segs = None
    same = (osp.realpath(img_dir), seg_dir and osp.realpath(seg_dir), img_suffix, seg_suffix,
            bool(_init_default(ds, framework, "reduce_zero_label", False)),
            tuple(dataset_classes(ds, framework) or ()))
    if checked is not None:
        if same in checked:
            return  # the same files read the same way: reported under the first dataset
        checked.add(same)
    read = [f for f in imgs if f.endswith(img_suffix)]
    _check_images([osp.join(img_dir, f) for f in read], key, problems)
    if segs is None:
        return
    pairs = [(osp.join(img_dir, f), osp.join(seg_dir, f[:-len(img_suffix)] + seg_suffix))
             for f in read]
    absent = [m for _, m in pairs if not osp.isfile(m)]
    if absent:
        problems.append(f"Seg map missing: {absent[0]}{_more(len(absent))} ({key}: every image "
                        f"of {img_dir} needs <name>{seg_suffix} in {seg_dir}). Add them or "
                        f"remove those images.")
    maps = _check_seg_headers(key, [(i, m) for i, m in pairs if osp.isfile(m)], problems)
    _check_label_values(key, ds, framework, maps[:20], problems)


def _more(n: int) -> str:
    return f" and {n - 1} more" if n > 1 else ""


# what Pillow raises for a file it cannot read; ImportError too: once Ultralytics is imported,
# PIL.Image.open retries an unidentified file with the pi-heif plugin and, without it, raises
# ModuleNotFoundError (ultralytics/utils/patches.py, image_open)
UNREADABLE_IMAGE = (OSError, ValueError, ImportError)


def image_size(path: str) -> Optional[Tuple[int, int]]:
    """(width, height) from the image header (Pillow reads the header only), or None."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except UNREADABLE_IMAGE:
        return None


def _check_seg_headers(key: str, pairs: List[Tuple[str, str]], problems: List[str]) -> List[str]:
    """Every seg map holds class ids (not colours) at its image's size; headers only.

    Colour masks (CVAT's "Segmentation mask 1.1" export, cvat-ai/cvat#2390; labelme's
    visualisations) are RGB, which mmseg would read as ids; palette PNGs (VOC) read as their
    indices and are fine. Returns the maps that passed.
    """
    from PIL import Image

    colour, resized, good = [], [], []
    for img, m in pairs:
        try:
            with Image.open(m) as im:
                mode, size = im.mode, im.size
        except UNREADABLE_IMAGE:
            good.append(m)  # unreadable: the values check names it
            continue
        if mode in ("RGB", "RGBA", "LA", "CMYK"):
            colour.append(f"{m} ({mode})")
        elif (isize := image_size(img)) is not None and tuple(isize) != tuple(size):
            resized.append(f"{m} ({size[0]}x{size[1]}, its image {isize[0]}x{isize[1]})")
        else:
            good.append(m)
    if colour:
        problems.append(f"Seg map in colour: {colour[0]}{_more(len(colour))} ({key}): mmseg "
                        f"reads one class id per pixel. Convert the colours to a single-channel "
                        f"(or palette) PNG of class ids.")
    if resized:
        problems.append(f"Seg map of another size than its image: {resized[0]}"
                        f"{_more(len(resized))} ({key}). Re-export the masks at the image size.")
    return good


# a first class of one of these names means label 0 is a class of the list (as labelme's
# `_background_`), so reduce_zero_label=True would shift every name
BACKGROUND_NAMES = ("background", "bg", "unlabeled", "unlabelled", "void")


def _check_label_values(key: str, ds: dict, framework: str, maps: List[str],
                        problems: List[str]) -> None:
    """The seg maps' values fit the classes and ``reduce_zero_label``."""
    rzl = bool(_init_default(ds, framework, "reduce_zero_label", False))
    okey = _option_key(key)
    classes = dataset_classes(ds, framework)
    if not maps or classes is None:
        return
    full = ((getattr(_dataset_class(ds, framework), "METAINFO", None) or {}).get("classes"))
    subset = full is not None and list(full) != list(classes)  # mmseg maps ids of the full list
    n = len(full) if subset else len(classes)
    import numpy as np
    from PIL import Image

    values = set()
    for m in maps:
        try:
            label = np.asarray(Image.open(m))
        except UNREADABLE_IMAGE as err:
            problems.append(f"Seg map unreadable: {m} ({key}): {err}")
            return
        if label.ndim != 2:
            problems.append(
                f"Seg map {m} ({key}) has shape {label.shape}: a colour image, but mmseg reads "
                f"one class index per pixel (a single-channel or palette PNG). Convert the "
                f"colours to class indices.")
            return
        values |= set(np.unique(label).tolist())
    real = sorted(v for v in values if v != 255)
    if not real:
        return
    shown = f"values {real[:12]}{' ...' if len(real) > 12 else ''}"
    if real[-1] > n:
        problems.append(
            f"{key}: seg maps hold {shown} (read {len(maps)} of {osp.dirname(maps[0])}) but the "
            f"dataset has {n} classes, so labels above {n - 1 + rzl} have no class. Give "
            f"metainfo=dict(classes=...) with one name per value, or remap the maps.")
    elif not rzl and real[-1] == n:
        problems.append(
            f"{key}: seg maps hold {shown} with {n} classes and reduce_zero_label=False: value "
            f"{n} has no class, so 0 looks like background and 1..{n} like the classes. Set "
            f"--cfg-options {okey}.reduce_zero_label=True (and in its LoadAnnotations).")
    elif rzl and not subset and 255 in values and 0 in values and real[-1] <= n - 1:
        background = str(classes[0]).strip("_ ").lower() in BACKGROUND_NAMES
        message = (f"{key}: seg maps hold {shown} and 255 with {n} classes, but "
                   f"reduce_zero_label=True ignores 0 and reads value v as classes[v-1]")
        if background:  # the class list names 0 itself: True shifts every name by one
            problems.append(
                f"{message}: 0 looks like a real class (classes[0] is {classes[0]!r}; 255 is "
                f"the ignored label), so every class name would be shifted by one and the last "
                f"class never seen. Set --cfg-options {okey}.reduce_zero_label=False (and in "
                f"its LoadAnnotations).")
        else:  # ambiguous: VOC's own masks (0 background, 255 boundary, 1..20) read right
            from mmengine.logging import print_log
            print_log(f"{message}. Right when 0 is unlabelled background (VOC's masks); if 0 "
                      f"is a real class here, every class name is shifted by one: then set "
                      f"--cfg-options {okey}.reduce_zero_label=False (and in its "
                      f"LoadAnnotations).", logger="current", level=logging.WARNING)


def check_datasets(cfg, mode: str = "train", problems: Optional[List[str]] = None,
                   found: Optional[Dict[str, Tuple[str, dict]]] = None) -> Dict[str, List[str]]:
    """Every dataset root, annotation file, data folder and listed image exists; annotations
    parse; mmseg folders read the suffixes on disk and labels fit ``reduce_zero_label``.

    Args:
        problems: where to add one line per problem; ``None`` raises the first.
        found: filled with ``{dataset key: (annotation file, object-name counts)}``.

    Returns:
        Category names read from annotation files, by dataset key (COCO only).
    """
    own = problems if problems is not None else []
    framework = framework_of(cfg)
    categories: Dict[str, List[str]] = {}
    seen, seg_checked = set(), set()
    for loader in loaders_for(cfg, mode):
        for key, ds in dataset_leaves(cfg[loader]["dataset"], f"{loader}.dataset"):
            root, ann = ds.get("data_root"), ds.get("ann_file")
            prefix = ds.get("data_prefix") or {}
            if framework == "mmseg":
                _check_seg_settings(key, ds, framework, own)
            if root and not osp.isdir(root):
                if root not in seen:
                    own.append(_missing(root, "data_root", key, ds))
                seen.add(root)
                continue
            bad = False
            if ann and not osp.isfile(join_root(root, ann)):
                if join_root(root, ann) not in seen:
                    own.append(_missing(join_root(root, ann), "ann_file", key, ds))
                seen.add(join_root(root, ann))
                bad = True
            for name, sub in prefix.items():
                path = join_root(root, sub) if sub else root
                if path and not osp.isdir(path):
                    if path not in seen:
                        own.append(_missing(path, f"data_prefix.{name}", key, ds))
                    seen.add(path)
                    bad = True
            if bad:
                continue
            if ann:
                try:
                    names, images, objects = _read_annotation(join_root(root, ann), ds, key)
                except PreflightError as err:
                    own.append(str(err))
                    continue
                if names is not None:
                    categories[key] = names
                if found is not None:
                    found[key] = (join_root(root, ann), objects)
                _check_images(images, key, own)
            elif prefix.get("img_path") and framework == "mmseg":
                _check_seg_dataset(key, ds, framework, own, seg_checked)
            if problems is None and own:
                raise PreflightError(own[0])
    return categories


def check_evaluators(cfg, mode: str, problems: List[str]) -> None:
    """The evaluators' ``ann_file`` exists and lists the images its dataset reads: mmdet's
    base configs fix ``val_evaluator.ann_file = data_root + '...'`` when the config is
    read, so moving ``data_root`` does not move it."""
    loader = "val_dataloader" if mode == "train" else "test_dataloader"
    leaves = list(dataset_leaves(cfg[loader]["dataset"], f"{loader}.dataset")) if cfg.get(loader) else []
    for key, ev in evaluators_for(cfg, mode):
        ann = ev.get("ann_file")
        if not ann:
            continue
        ds_anns = [join_root(d.get("data_root"), d["ann_file"]) for _, d in leaves if d.get("ann_file")]
        guess = ds_anns[0] if len(ds_anns) == 1 else "<data_root>/annotations/<file>.json"
        if not osp.isfile(ann):
            problems.append(f"{key}.ann_file not found: {ann} (the {ev.get('type')} reads it; "
                            f"it does not follow data_root). Set --cfg-options {key}.ann_file="
                            f"{guess}")
            continue
        if len(ds_anns) == 1 and osp.isfile(ds_anns[0]) \
                and osp.realpath(ann) != osp.realpath(ds_anns[0]) and ann.endswith(".json"):
            try:
                with open(ann, encoding="utf-8") as f:
                    ev_names = {im["file_name"] for im in json.load(f).get("images", [])}
                with open(ds_anns[0], encoding="utf-8") as f:
                    ds_names = {im["file_name"] for im in json.load(f).get("images", [])}
            except (OSError, ValueError, KeyError, TypeError):
                continue  # the dataset check reports an unreadable dataset file
            if not ds_names <= ev_names:
                problems.append(
                    f"{key}.ann_file={ann} lacks {len(ds_names - ev_names)} of the "
                    f"{len(ds_names)} images {leaves[0][0]} reads from {ds_anns[0]}: the metric "
                    f"would score them against another set's labels. Set --cfg-options "
                    f"{key}.ann_file={ds_anns[0]}")


def _dataset_class(ds: dict, framework: str):
    if framework == "mmdet":
        from mmdet.registry import DATASETS
    else:
        from mmseg.registry import DATASETS
    return DATASETS.get(ds.get("type")) if isinstance(ds.get("type"), str) else None


def dataset_classes(ds: dict, framework: str) -> Optional[Sequence[str]]:
    classes = (ds.get("metainfo") or {}).get("classes")
    if classes is not None:
        return list(classes)
    meta = getattr(_dataset_class(ds, framework), "METAINFO", None) or {}
    return list(meta["classes"]) if "classes" in meta else None


def _class_fix(cfg, names: Sequence[str], heads: List[Tuple[str, int]]) -> str:
    """The option string that sets ``names`` as the classes of every dataset (train, val and
    test) and ``num_classes`` of every head; a config snippet when a name holds a space
    (mmengine's ``DictAction`` drops spaces inside values)."""
    datasets = [_option_key(k) for k, _ in _all_datasets(cfg)]
    if any(any(ch.isspace() for ch in n) for n in names):
        return (f"in a config with _base_ = [THIS CONFIG] (--cfg-options drops the spaces in "
                f"names), set metainfo=dict(classes={tuple(names)!r}) in "
                f"{', '.join(datasets)} and num_classes={len(names)} in "
                f"{', '.join(p for p, _ in heads)}")
    keys = [f"{k}.metainfo.classes=\"{tuple(names)!r}\"" for k in datasets]
    keys += [f"{p}.num_classes={len(names)}" for p, _ in heads]
    return "--cfg-options " + " ".join(keys)


def check_num_classes(cfg, mode: str = "train",
                      annotation_classes: Optional[Dict[str, List[str]]] = None,
                      problems: Optional[List[str]] = None,
                      objects: Optional[Dict[str, Tuple[str, dict]]] = None) -> None:
    """Every head's ``num_classes`` equals the dataset's class count, and the classes exist
    in the data (COCO categories; VOC object names), with one fix naming every key."""
    own = problems if problems is not None else []
    framework = framework_of(cfg)
    heads = [(p, d["num_classes"]) for p, d in walk_config(cfg.get("model", {}))
             if isinstance(d.get("num_classes"), int)]
    reported = set()
    for loader in loaders_for(cfg, mode):
        for key, ds in dataset_leaves(cfg[loader]["dataset"], f"{loader}.dataset"):
            classes = dataset_classes(ds, framework)
            if classes is None:
                continue
            shown = ", ".join(map(repr, classes[:8])) + (", ..." if len(classes) > 8 else "")
            names = (annotation_classes or {}).get(key)
            ann, counts = (objects or {}).get(key, (ds.get("ann_file"), {}))
            absent = [c for c in classes if c not in names] if names is not None else []
            foreign = sorted(n for n in counts if n not in classes)
            if names is not None and absent:
                if tuple(names) in reported:
                    continue  # the fix already given names every dataset
                reported.add(tuple(names))
                theirs = ", ".join(map(repr, names[:10])) + (", ..." if len(names) > 10 else "")
                gone = repr(absent[:10])[:-1] + (", ...]" if len(absent) > 10 else "]")
                own.append(
                    f"{key}: classes {gone} are not categories of {ann} (its {len(names)}: "
                    f"{theirs}; the config's {len(classes)}: {shown}). To train on its "
                    f"categories: {_class_fix(cfg, names, heads)}")
                continue
            if foreign and any(c not in counts for c in classes):
                if "voc-names" in reported:
                    continue  # the fix already given names every dataset and every name
                reported.add("voc-names")
                every = sorted({n for _, c in (objects or {}).values() for n in c})
                own.append(
                    f"{key}: the XML files of {ann} name classes the config lacks "
                    f"({', '.join(f'{n!r} x{counts[n]}' for n in foreign[:10])}; the config's: "
                    f"{shown}): mmdet would drop those objects. To train on the data's names: "
                    f"{_class_fix(cfg, every, heads)}")
                continue
            for path, n in heads:
                if n != len(classes) and path not in reported:
                    reported.add(path)
                    own.append(
                        f"{path}.num_classes={n} but {key} has {len(classes)} classes ({shown}). "
                        f"Set num_classes={len(classes)} in every head, or give the dataset "
                        f"metainfo=dict(classes=...) with {n} names.")
            if problems is None and own:
                raise PreflightError(own[0])


def check_cpu_bf16(cfg, mode: str) -> None:
    """``val_cfg`` / ``test_cfg`` ``fp16=True`` on a CPU: mmengine runs the loop under
    ``torch.autocast('cpu', bfloat16)``. MMSegmentation evaluates that way (measured:
    docs/benchmarks.md), but MMDetection's post-processing reaches mmcv's CPU NMS, which has
    no bfloat16 kernel ("expected scalar type Float but found BFloat16" after the first
    batch); raise before anything is built.
    """
    import torch

    if torch.cuda.is_available() or framework_of(cfg) != "mmdet":
        return
    for key in ("val_cfg", "test_cfg") if mode == "train" else ("test_cfg",):
        loop = cfg.get(key)
        if isinstance(loop, dict) and loop.get("fp16"):
            raise PreflightError(
                f"{key}.fp16=True evaluates under bfloat16 autocast on this CPU, but MMDetection's "
                f"NMS (mmcv's CPU kernel) takes float32 boxes only. Evaluate detectors in float32 "
                f"on a CPU (drop {key}.fp16) or on a CUDA GPU; segmentors (MMSegmentation) run "
                f"in bfloat16 on a CPU.")


def _missing_data_fix(cfg, problems: List[str]) -> Optional[str]:
    """One ``--cfg-options`` string that moves every dataset and evaluator of the config (train,
    val and test) to one copy of the data, when a dataset root is missing: the fix of every
    "not found" line at once, so that following it does not lead to the next key."""
    if not any(p.startswith("Dataset path not found:") and "(data_root of" in p for p in problems):
        return None
    roots = {d.get("data_root") for _, d in _all_datasets(cfg)}
    if len(roots) != 1 or None in roots:
        return None
    root = roots.pop()
    opts = [f"{_option_key(k)}.data_root=DIR" for k, _ in _all_datasets(cfg)]
    for name in ("val_evaluator", "test_evaluator"):
        for key, ev in evaluators_for(cfg, "train" if name == "val_evaluator" else "test"):
            ann = ev.get("ann_file")
            if ann:
                rel = ann[len(root):] if ann.startswith(root) else osp.basename(ann)
                opts.append(f"{key}.ann_file=DIR/{rel.lstrip('/')}")
    framework = framework_of(cfg)
    classes = [c for _, d in _all_datasets(cfg) for c in [dataset_classes(d, framework)] if c]
    heads = [p for p, d in walk_config(cfg.get("model", {})) if isinstance(d.get("num_classes"), int)]
    also = (f"; if its classes are not the config's {len(classes[0])}, also set "
            f"metainfo.classes of each dataset below and num_classes=N in "
            f"{', '.join(heads)}" if classes and heads else "")
    return (f"To use your copy at DIR (same layout as {root}{also}), one option string moves "
            f"every dataset and evaluator of this config, for tools/train.py and tools/test.py: "
            f"--cfg-options {' '.join(opts)}")


def check_backbone_args(cfg) -> None:
    """Every lsdense backbone gets only arguments its class takes, refused in the class's own
    words (``backbones.refuse_unknown_args``). The usual cause of an unknown one: a config
    changing the type of a base config's backbone without ``_delete_=True``, so the base
    backbone's arguments (ResNet's ``depth``, ...) stay."""
    from .backbones import refuse_unknown_args

    for path, d in walk_config(cfg.get("model", {})):
        cls = _backbone_type(d)
        if cls is None:
            continue
        own = [k for k in inspect.signature(cls.__init__).parameters if k not in ("self", "kwargs")]
        try:
            refuse_unknown_args(cls.__name__, own, {k: v for k, v in d.items()
                                                    if k not in own and k not in ("type", "_delete_")})
        except TypeError as err:
            raise PreflightError(f"{path}: {err}") from None


def _checkpoint_sources(cfg, mode: str, checkpoint: Optional[str]
                        ) -> List[Tuple[str, str, Optional[dict]]]:
    """``(key, path, the lsdense backbone config that reads it, else None)`` of every
    checkpoint the run reads."""
    out = []
    if checkpoint is not None:
        out.append(("checkpoint", str(checkpoint), None))
    elif mode == "train" and cfg.get("load_from"):
        out.append(("load_from", str(cfg.load_from), None))
    if mode != "train":  # Runner.test loads the checkpoint only: init_cfg is not read
        return out
    for path, d in walk_config(cfg.get("model", {})):
        init = d.get("init_cfg")
        inits = init if isinstance(init, (list, tuple)) else [init]
        for i, ic in enumerate(inits):
            if isinstance(ic, dict) and ic.get("type") == "Pretrained" and ic.get("checkpoint"):
                key = f"{path}.init_cfg" + (f"[{i}]" if isinstance(init, (list, tuple)) else "")
                out.append((f"{key}.checkpoint", str(ic["checkpoint"]),
                            d if _backbone_type(d) is not None else None))
    return out


def check_checkpoint_files(cfg, mode: str, checkpoint: Optional[str],
                           problems: List[str]) -> None:
    """``--checkpoint`` / ``load_from`` / (training) every ``init_cfg`` checkpoint exists, is a
    torch file, and a URL is in torch.hub's cache or downloads now (offline: one line naming
    the cache path to put the file at). Other schemes (``open-mmlab://``) are mmengine's to
    read, except in an lsdense backbone's ``init_cfg``, whose loader reads paths and URLs; a
    file there must also fit the backbone (loaded into a fresh one: a config that switched the
    backbone type without ``_delete_=True`` keeps the base backbone's weights)."""
    from lsdense.models.checkpoint import check_checkpoint_file, is_url, read_checkpoint, \
        url_cache_path

    for key, path, ours in _checkpoint_sources(cfg, mode, checkpoint):
        scratch = f"train from scratch: --cfg-options {key.rsplit('.', 1)[0]}=None"
        if "://" in path and not is_url(path):  # open-mmlab://, torchvision://, s3:// ...
            if ours:
                problems.append(f"{key}={path!r} uses a scheme lsdense's loader does not read; "
                                f"give a local path or an http(s):// URL.")
            continue  # mmengine's CheckpointLoader reads them for other modules
        if is_url(path):
            if not url_cache_path(path).is_file():
                try:
                    read_checkpoint(path)
                except (ConnectionError, ValueError) as err:
                    problems.append(f"{key}: {str(err).splitlines()[0]}"
                                    + (f" Or {scratch}." if key.endswith("init_cfg.checkpoint")
                                       else ""))
                    continue
            _check_backbone_fit(key, ours, scratch, problems)
            continue
        if not osp.isfile(path):
            if key == "checkpoint":
                fix = "give the .pth file tools/train.py wrote (work_dirs/<config>/epoch_N.pth)"
            elif key == "load_from":
                fix = "fix the path, or drop it: --cfg-options load_from=None"
            else:
                fix = (f"download it there, name its http(s) URL instead (downloaded once and "
                       f"cached), or {scratch}")
            problems.append(f"{key}={path}: checkpoint not found; {fix}")
            continue
        try:
            check_checkpoint_file(path)
        except ValueError as err:
            problems.append(f"{key}: {err}")
            continue
        _check_backbone_fit(key, ours, scratch, problems)


def _check_backbone_fit(key: str, backbone: Optional[dict], scratch: str,
                        problems: List[str]) -> None:
    """An lsdense backbone's ``init_cfg`` file loads into that backbone (built on the CPU and
    loaded by its own ``init_weights``, as the run will)."""
    if backbone is None:
        return
    cls = _backbone_type(backbone)
    try:
        cls(**{k: v for k, v in backbone.items() if k not in ("type", "_delete_")}).init_weights()
    except (ValueError, TypeError, KeyError) as err:  # arguments: check_backbone_args names them
        if isinstance(err, ValueError):
            problems.append(
                f"{key}: {str(err).splitlines()[0]} An init_cfg left from the base config's "
                f"backbone when the type was switched? Write backbone=dict(_delete_=True, "
                f"type='{cls.__name__}', ...), or {scratch}.")


def _group(keys: Sequence[str]) -> str:
    """``'neck.* (12), bbox_head.* (20)'``: keys counted by their first two name levels."""
    counts: Dict[str, int] = {}
    for k in keys:
        top = ".".join(k.split(".")[:1]) + ".*"
        counts[top] = counts.get(top, 0) + 1
    return ", ".join(f"{t} ({n})" for t, n in counts.items())


def checkpoint_fit(cfg, path: str) -> Tuple[int, int, List[str], List[str], List[str]]:
    """How a model checkpoint fits the config's model, without running anything.

    The model is built on PyTorch's ``meta`` device (no memory, no weights: shapes only);
    checkpoint keys are taken as mmengine's ``load_from`` takes them (``state_dict`` inside,
    ``module.`` stripped). LSNet's
    ``attention_biases`` tables count as fitting at any size (the load hook resizes them).

    Returns:
        ``(fitting, total, missing, mismatched, unexpected)``: tensors of the model that
        load, the model's tensor count, its keys the file lacks, keys whose shapes differ,
        and file keys the model lacks.
    """
    from lsdense.models.checkpoint import read_checkpoint, unwrap_state_dict

    sd = unwrap_state_dict(read_checkpoint(path))
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    model = _build_model_shapes(cfg)
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    mismatched = [k for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)
                  and not k.endswith("attention_biases")]
    unexpected = [k for k in sd if k not in own and not k.endswith("attention_bias_idxs")]
    fitting = len(own) - len(missing) - len(mismatched)
    return fitting, len(own), missing, mismatched, unexpected


def _build_model_shapes(cfg):
    """The config's model built on the ``meta`` device (shapes, no storage)."""
    import torch
    from mmengine.registry import DefaultScope

    framework = framework_of(cfg)
    if framework == "mmdet":
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    else:
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    model_cfg = copy.deepcopy(cfg.model)
    with DefaultScope.overwrite_default_scope(framework):
        try:
            with torch.device("meta"):
                return MODELS.build(model_cfg)
        except (RuntimeError, NotImplementedError, TypeError, ValueError):
            return MODELS.build(copy.deepcopy(cfg.model))  # a module that needs real storage


def check_checkpoint_fit(cfg, mode: str, checkpoint: Optional[str], problems: List[str],
                         note=print) -> None:
    """``tools/test.py``'s checkpoint must fit the model entirely (a checkpoint of another
    model would be evaluated half random); ``load_from`` for training must fit at least one
    tensor (fine-tuning to other classes drops the classifier: fine). ``note`` gets the
    share that fits (one line)."""
    import sys

    key, path = ("checkpoint", checkpoint) if checkpoint is not None else \
        ("load_from", cfg.get("load_from") if mode == "train" and not cfg.get("resume") else None)
    if not path or not osp.isfile(str(path)):
        return
    try:
        fit, total, missing, mismatched, unexpected = checkpoint_fit(cfg, str(path))
    except (ValueError, TypeError) as err:
        problems.append(f"{key}={path}: {str(err).splitlines()[0]}")
        return
    share = f"{fit} of the {total} tensors ({100 * fit // max(total, 1)} %)"  # 99 % until all
    details = "; ".join(s for s in (
        f"missing {_group(missing)}" if missing else "",
        f"other shapes {_group(mismatched)}" if mismatched else "",
        f"not in the model {_group(unexpected)}" if unexpected else "") if s)
    if (key == "checkpoint" and fit < total) or fit == 0:
        problems.append(
            f"{key}={path} fits {share} of this config's model ({details}): it was saved for another "
            f"model. Give a checkpoint of this config (the one tools/train.py wrote for it), "
            f"or the config it was trained with.")
    else:
        note(f"{key}: {path} loads {share} of this config's model"
             + (f"; left at init: {details}" if details else ""),
             file=sys.stderr)


def preflight(cfg, mode: str = "train", filename: str = "the config",
              checkpoint: Optional[str] = None) -> None:
    """Run every check for ``mode`` ('train' also checks the validation data; 'test').

    Every problem found is reported at once: the :class:`PreflightError` holds one line per
    problem (a dataset root that is missing skips the checks that need its files).

    Args:
        checkpoint: ``tools/test.py``'s checkpoint (checked to fit the model entirely).
    """
    problems: List[str] = []

    def run(check, *args):
        try:
            check(*args)
        except PreflightError as err:
            problems.append(str(err))
            return False
        return True

    run(check_cpu_bf16, cfg, mode)
    model_ok = run(check_custom_imports, cfg, filename) and run(check_backbone_args, cfg) \
        and run(check_archs, cfg) and run(check_neck_channels, cfg)
    from .annotations import check_annotations  # annotation tools' exports: read or stop

    check_annotations(cfg, mode, problems)  # first: the checks below read its fixed copies
    objects: Dict[str, Tuple[str, dict]] = {}
    names = check_datasets(cfg, mode, problems, objects)
    check_evaluators(cfg, mode, problems)
    check_num_classes(cfg, mode, names, problems, objects)
    n_files = len(problems)
    check_checkpoint_files(cfg, mode, checkpoint, problems)
    if model_ok and len(problems) == n_files:
        check_checkpoint_fit(cfg, mode, checkpoint, problems)
    fix = _missing_data_fix(cfg, problems)
    if fix:
        problems.append(fix)
    if problems:
        raise DatasetNotFoundError("\n".join(problems)) \
            if all(p.startswith("Dataset path not found") or "ann_file not found" in p
                   or p.startswith("To use your copy") for p in problems) \
            else PreflightError("\n".join(problems))
