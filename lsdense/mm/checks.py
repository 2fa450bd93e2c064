"""Pre-flight checks: clear errors for a config before any model or data is built.

``preflight(cfg, mode)`` runs, in order: the config imports the lsdense module
its framework needs (``custom_imports``); every lsdense ``arch`` exists; the
neck (or, without a neck, each mmseg head) takes the channels the lsdense
backbone really returns; every dataset path exists (with the command that makes toy data); annotation files
parse and the images they list exist and are not empty; and every head's
``num_classes`` equals the number of dataset classes.
Each failure is a :class:`PreflightError` whose message names the config key
and the fix.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple
from xml.etree import ElementTree as ET

__all__ = ["PreflightError", "DatasetNotFoundError", "framework_of", "preflight",
           "check_custom_imports", "check_archs", "check_neck_channels", "check_datasets",
           "check_num_classes", "check_cpu_bf16", "LSDENSE_MODULES"]

# lsdense types a config may use, and the families of the backbones (for ``arch``)
LSDENSE_MODULES = {"LSNetBackbone": "lsnet", "LOLViTBackbone": "lolvit",
                   "LiSANetBackbone": "lisanet", "HyLiSANetBackbone": "hylisanet", "LSNetFPN": None}
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


def _walk(node, path: str = "model") -> Iterator[Tuple[str, dict]]:
    """Every dict (with its dotted path) inside a config node."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def check_custom_imports(cfg, filename: str = "the config") -> None:
    """A config that uses lsdense types must import ``lsdense.<framework>``."""
    framework = framework_of(cfg)
    used = sorted({d["type"] for _, d in _walk(cfg.get("model", {}))
                   if isinstance(d.get("type"), str) and d["type"] in LSDENSE_MODULES})
    if not used:
        return
    imports = (cfg.get("custom_imports") or {}).get("imports", [])
    imports = [imports] if isinstance(imports, str) else list(imports)
    needed = f"lsdense.{framework}"
    if needed not in imports:
        raise PreflightError(
            f"{filename} uses {', '.join(used)} but does not import {needed}, which registers "
            f"them in {framework}'s MODELS registry. Add to the config:\n"
            f"    custom_imports = dict(imports=['{needed}'], allow_failed_imports=False)")


def check_archs(cfg) -> None:
    """Every lsdense backbone in the model names an existing ``arch``."""
    from lsdense.models import variant_by_arch

    for path, d in _walk(cfg.get("model", {})):
        family = LSDENSE_MODULES.get(d.get("type")) if isinstance(d.get("type"), str) else None
        if family is None:
            continue
        if family == "lisanet" and d.get("hybrid", False):
            family = "hylisanet"
        arch = d.get("arch", {"lsnet": "t"}.get(family, "s"))
        try:
            variant_by_arch(family, arch)
        except ValueError as err:
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
    for path, d in _walk(cfg.get("model", {})):
        backbone = d.get("backbone")
        if not (isinstance(backbone, dict) and backbone.get("type") in LSDENSE_MODULES
                and LSDENSE_MODULES[backbone["type"]] is not None):
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


def _datasets(node: dict, path: str) -> Iterator[Tuple[str, dict]]:
    """Leaf dataset configs inside wrappers (RepeatDataset, ConcatDataset, ...)."""
    inner = [(k, node[k]) for k in _WRAPPERS if k in node]
    if not inner:
        yield path, node
        return
    for key, sub in inner:
        if isinstance(sub, (list, tuple)):
            for i, s in enumerate(sub):
                yield from _datasets(s, f"{path}.{key}[{i}]")
        else:
            yield from _datasets(sub, f"{path}.{key}")


def _loaders(cfg, mode: str) -> List[str]:
    names = ["train_dataloader", "val_dataloader"] if mode == "train" else ["test_dataloader"]
    return [n for n in names if cfg.get(n)]


def _join(root: Optional[str], p: str) -> str:
    return p if not root or osp.isabs(p) else osp.join(root, p)


def _missing(path: str, what: str, key: str, ds: dict) -> DatasetNotFoundError:
    kind = _TOY_KIND.get(ds.get("type"))
    root = ds.get("data_root") or osp.dirname(path)
    hint = (f"Make the toy {kind} data there with\n    python tools/make_toy_data.py {kind} "
            f"--out {root}\nor " if kind else "")
    return DatasetNotFoundError(
        f"Dataset path not found: {path} ({what} of {key}). {hint}point the config at your "
        f"copy, e.g. --cfg-options {key}.data_root=/path/to/data")


def _read_annotation(path: str, ds: dict, key: str) -> Tuple[Optional[List[str]], List[str]]:
    """Parse an annotation file; return its category names (COCO) and the images it lists."""
    prefix = ds.get("data_prefix") or {}
    try:
        if path.endswith(".json"):
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if not isinstance(data, dict) or "images" not in data:
                raise ValueError("not a COCO-style file (no 'images' list)")
            img_dir = _join(ds.get("data_root"), prefix.get("img", ""))
            images = [osp.join(img_dir, im["file_name"]) for im in data["images"]]
            return [c["name"] for c in data.get("categories", [])], images
        with open(path, encoding="utf-8") as f:  # VOC image-set list
            ids = [ln.strip() for ln in f if ln.strip()]
        images = []
        if ds.get("type") == "VOCDataset" and ids:
            sub = _join(ds.get("data_root"), prefix.get("sub_data_root", ""))
            ET.parse(osp.join(sub, "Annotations", f"{ids[0]}.xml"))
            images = [osp.join(sub, "JPEGImages", f"{i}.jpg") for i in ids]
        return None, images
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError, ET.ParseError) as err:
        raise PreflightError(f"Annotation file unreadable: {path} ({key}.ann_file): "
                             f"{type(err).__name__}: {err}") from None


def _check_images(images: List[str], key: str) -> None:
    """Every listed image exists and is not empty (a stat each; decoding errors are
    reported by file name during the run)."""
    for path in images:
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            raise PreflightError(f"Image missing: {path} (listed by {key}). Restore it or "
                                 f"remove it from the annotations.") from None
        if size == 0:
            raise PreflightError(f"Image file is empty (corrupt): {path} (listed by {key}). "
                                 f"Replace it or remove it from the annotations.")


def check_datasets(cfg, mode: str = "train") -> Dict[str, List[str]]:
    """Every dataset root, annotation file, data folder and listed image exists; annotations parse.

    Returns:
        Category names read from annotation files, by dataset key (COCO only).
    """
    found: Dict[str, List[str]] = {}
    for loader in _loaders(cfg, mode):
        for key, ds in _datasets(cfg[loader]["dataset"], f"{loader}.dataset"):
            root, ann = ds.get("data_root"), ds.get("ann_file")
            prefix = ds.get("data_prefix") or {}
            if root and not osp.isdir(root):
                raise _missing(root, "data_root", key, ds)
            if ann and not osp.isfile(_join(root, ann)):
                raise _missing(_join(root, ann), "ann_file", key, ds)
            for name, sub in prefix.items():
                path = _join(root, sub) if sub else root
                if path and not osp.isdir(path):
                    raise _missing(path, f"data_prefix.{name}", key, ds)
            if ann:
                names, images = _read_annotation(_join(root, ann), ds, key)
                if names is not None:
                    found[key] = names
            elif prefix.get("img_path"):  # mmseg: the images are the folder's files
                folder = _join(root, prefix["img_path"])
                images = [osp.join(folder, f) for f in sorted(os.listdir(folder))]
            else:
                images = []
            _check_images(images, key)
    return found


def _dataset_classes(ds: dict, framework: str) -> Optional[Sequence[str]]:
    classes = (ds.get("metainfo") or {}).get("classes")
    if classes is not None:
        return list(classes)
    if framework == "mmdet":
        from mmdet.registry import DATASETS
    else:
        from mmseg.registry import DATASETS
    cls = DATASETS.get(ds.get("type")) if isinstance(ds.get("type"), str) else None
    meta = getattr(cls, "METAINFO", None) or {}
    return list(meta["classes"]) if "classes" in meta else None


def check_num_classes(cfg, mode: str = "train",
                      annotation_classes: Optional[Dict[str, List[str]]] = None) -> None:
    """Every head's ``num_classes`` equals the dataset's class count, and the
    classes exist in the annotation file."""
    framework = framework_of(cfg)
    heads = [(p, d["num_classes"]) for p, d in _walk(cfg.get("model", {}))
             if isinstance(d.get("num_classes"), int)]
    for loader in _loaders(cfg, mode):
        for key, ds in _datasets(cfg[loader]["dataset"], f"{loader}.dataset"):
            classes = _dataset_classes(ds, framework)
            if classes is None:
                continue
            for path, n in heads:
                if n != len(classes):
                    shown = ", ".join(map(repr, classes[:8])) + (", ..." if len(classes) > 8 else "")
                    raise PreflightError(
                        f"{path}.num_classes={n} but {key} has {len(classes)} classes ({shown}). "
                        f"Set num_classes={len(classes)} in every head, or give the dataset "
                        f"metainfo=dict(classes=...) with {n} names.")
            names = (annotation_classes or {}).get(key)
            if names is not None:
                absent = [c for c in classes if c not in names]
                if absent:
                    raise PreflightError(
                        f"{key}: classes {absent} are not categories of {ds.get('ann_file')} "
                        f"(it has {names[:10]}). Set metainfo=dict(classes=...) to its names.")


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


def preflight(cfg, mode: str = "train", filename: str = "the config") -> None:
    """Run every check for ``mode`` ('train' also checks the validation data; 'test')."""
    check_cpu_bf16(cfg, mode)
    check_custom_imports(cfg, filename)
    check_archs(cfg)
    check_neck_channels(cfg)
    from .annotations import check_annotations  # exports of annotation tools: read or stop

    check_annotations(cfg, mode)
    names = check_datasets(cfg, mode)
    check_num_classes(cfg, mode, names)
