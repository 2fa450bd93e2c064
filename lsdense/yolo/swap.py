"""Swap the backbone of an Ultralytics model YAML for an lsdense backbone.

``swap_backbone('yolov8n.yaml', 'lolvit_s')`` replaces the ``backbone`` rows by
one lsdense backbone row plus one ``Index`` row per level the head uses, and
renumbers every head reference. Which level feeds a reference is decided by
stride: the stock backbone is built once and probed (256x256 input, as
Ultralytics probes), so a head reference to the stride-8 row gets the lsdense
level whose ``feature_info`` reduction is 8 (P3); P1/P2/P6 work the same way.
"""
from __future__ import annotations

from copy import deepcopy
from pathlib import Path
from typing import Dict, List, Optional, Union

import torch
import yaml

from lsdense.cfg import yolo_yaml
from lsdense.models import get_variant

from .modules import FAMILY_MODULE, run_layers

__all__ = ["swap_backbone", "load_model_yaml", "dump_model_yaml", "backbone_row_strides",
           "apply_scale"]

_NO_CLAMP = {"Index", "Concat", "Detect", "Segment", "Pose", "OBB", "v10Detect", "SegHead", "AGate",
             "AdaptiveConcat", "SegHeadLinear"}


def load_model_yaml(model: Union[str, Path, dict]) -> dict:
    """Read a model YAML: a dict, a file path, or a stock name such as ``'yolo11n.yaml'``.

    The scale letter of a stock name (``n`` in ``yolov8n.yaml``) is kept in ``d['scale']``.
    """
    if isinstance(model, dict):
        return deepcopy(model)
    from ultralytics.nn.tasks import yaml_model_load

    path = Path(model)
    if path.suffix not in {".yaml", ".yml"}:
        raise ValueError(f"Expected a model .yaml file, got {model!r}.")
    try:
        return yaml_model_load(yolo_yaml(path))  # bundled lsdense names too
    except FileNotFoundError:
        raise ValueError(f"Model YAML {model!r} not found: give a file path or a stock "
                         f"Ultralytics name such as 'yolov8n.yaml' or 'yolo11n.yaml'.") from None


def backbone_row_strides(d: dict, imgsz: int = 256) -> List[int]:
    """Stride of every ``backbone`` row of a model YAML, measured with one forward pass."""
    from ultralytics.nn.tasks import parse_model

    m = dict(deepcopy(d), head=[])
    m.setdefault("nc", 80)
    layers, _ = parse_model(m, ch=d.get("channels", 3), verbose=False)
    strides = []
    for y in run_layers(layers, torch.zeros(1, d.get("channels", 3), imgsz, imgsz)):
        t = y[0] if isinstance(y, (list, tuple)) else y
        strides.append(imgsz // t.shape[-2])
    return strides


def apply_scale(d: dict, scale: Optional[str]) -> dict:
    """Turn ``scales`` + scale letter into explicit multiples (the output file name may lack the letter)."""
    scales = d.pop("scales", None)
    d.pop("scale", None)
    if not scales:
        return d
    scale = scale or next(iter(scales))
    if scale not in scales:
        raise ValueError(f"Scale {scale!r} not in the YAML's scales {sorted(scales)}.")
    depth, width, max_channels = scales[scale]
    d["depth_multiple"], d["width_multiple"] = depth, width
    for row in d["head"]:  # Ultralytics clamps widths to max_channels before scaling
        if row[2] not in _NO_CLAMP and row[3] and isinstance(row[3][0], int):
            row[3][0] = min(row[3][0], max_channels)
    d["lsdense_scale"] = scale
    return d


def _stride_hint(used: List[int], missing: List[int], levels: Dict[int, tuple]) -> str:
    """What fits when a head needs strides a backbone lacks: backbones that have them, or
    the stock head that needs only the strides this backbone has."""
    from lsdense.models import list_backbones

    fits = [n for n in list_backbones()
            if set(used) <= {f["reduction"] for f in get_variant(n).feature_info}]
    if max(missing) > max(levels):
        head = "the YAML without -p6/-p7 (e.g. yolov8n.yaml: strides 8, 16, 32)"
    else:
        head = "the YAML without -p2 (e.g. yolov8n.yaml: strides 8, 16, 32)"
    return f"use {head}" + (f", or a backbone with those levels: {', '.join(fits)}" if fits else "")


def swap_backbone(model: Union[str, Path, dict], backbone: str, pretrained: Optional[str] = None,
                  scale: Optional[str] = None, nc: Optional[int] = None) -> dict:
    """Return a model YAML dict with ``backbone`` replaced by an lsdense backbone.

    Args:
        model: the stock YAML (dict, path, or Ultralytics name like ``'yolov8n.yaml'``).
        backbone: an lsdense variant name, e.g. ``'lolvit_s'`` (see ``list_backbones()``).
        pretrained: optional backbone checkpoint path written into the backbone row.
        scale: scale letter to bake in (default: the one in the YAML name, else the first).
        nc: optionally override the number of classes.

    Returns:
        The new model dict (``backbone`` rows: the lsdense backbone + ``Index`` rows).

    Raises:
        ValueError: unknown backbone, or the head needs a stride the backbone lacks.
    """
    variant = get_variant(backbone)
    d = load_model_yaml(model)
    scale = scale or d.get("scale") or None
    old_bb, head = d["backbone"], deepcopy(d["head"])
    nb = len(old_bb)
    strides = backbone_row_strides(d)
    levels = {f["reduction"]: (i, f["num_chs"]) for i, f in
              enumerate(variant.feature_info)}

    def absolute(k: int, j: int) -> int:
        return nb + k + j if j < 0 else j

    used = sorted({strides[a] for k, row in enumerate(head)
                   for a in (absolute(k, j) for j in (row[0] if isinstance(row[0], list) else [row[0]]))
                   if a < nb})
    missing = [s for s in used if s not in levels]
    if missing:
        raise ValueError(f"The head of this YAML uses backbone strides {used}, but {variant.name} "
                         f"has levels at strides {sorted(levels)} only (no {missing}): "
                         f"{_stride_hint(used, missing, levels)}.")
    out_indices = [levels[s][0] for s in used]
    module = FAMILY_MODULE.get(variant.family)
    if module is None:
        raise ValueError(f"No Ultralytics backbone module for family {variant.family!r}; "
                         f"known: {sorted(FAMILY_MODULE)}.")
    args: list = [variant.arch]
    if pretrained or out_indices != list(range(len(levels))):
        args += [pretrained, out_indices]
    new_bb = [[-1, 1, module, args]]
    row_of_stride: Dict[int, int] = {}
    for pos, s in enumerate(used):
        new_bb.append([0, 1, "Index", [levels[s][1], pos]])
        row_of_stride[s] = len(new_bb) - 1
    nb_new = len(new_bb)

    def remap(k: int, j: int) -> int:
        a = absolute(k, j)
        if a < nb:
            new = row_of_stride[strides[a]]
            return -1 if j == -1 and new == nb_new - 1 else new
        return j if j < 0 else a - nb + nb_new

    for k, row in enumerate(head):
        row[0] = [remap(k, j) for j in row[0]] if isinstance(row[0], list) else remap(k, row[0])
    d["backbone"], d["head"] = new_bb, head
    if nc is not None:
        d["nc"] = nc
    for key in ("yaml_file", "channels"):
        d.pop(key, None)
    d["lsdense_backbone"] = variant.name
    return apply_scale(d, scale)


def dump_model_yaml(d: dict, path: Union[str, Path, None] = None, comment: str = "") -> str:
    """Write a model dict as a readable Ultralytics YAML (one flow-style row per layer)."""
    def flow(x) -> str:
        text = yaml.safe_dump(x, default_flow_style=True, width=10_000).strip()
        return text[:-3].strip() if text.endswith("\n...") or text.endswith("...") else text

    lines = [f"# {c}" for c in comment.splitlines()] if comment else []
    for k, v in d.items():
        if k not in ("backbone", "head"):
            lines.append(f"{k}: {flow(v)}")
    i = 0
    for section in ("backbone", "head"):
        lines.append(f"{section}:")
        for f, n, m, args in d[section]:
            lines.append(f"  - [{flow(f)}, {n}, {m}, {flow(args)}]  # {i}")
            i += 1
    text = "\n".join(lines) + "\n"
    if path is not None:
        Path(path).write_text(text)
    return text
