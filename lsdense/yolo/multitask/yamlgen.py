"""Write A-YOLOM model YAMLs (the shipped ``configs/yolo/ayolom-*.yaml`` come from here).

Official layout (``yolov8-bdd-v4-one-dropout-individual-{n,s}.yaml`` of the
official repository): the YOLOv8 backbone and FPN/PAN detection neck (rows
0-21); per segmentation task a top-down branch from the SPPF output that, at
each of P4, P3, P2, P1, upsamples x2, joins the backbone skip with
``AdaptiveConcat`` (concat + 1x1 conv) and runs ``C2f`` (512, 256, 128, 64
before width scaling), lane branch first (rows 22-33), drivable second (34-45);
then ``Detect`` (row 46) and one ``SegHead`` per task (drivable 47, lane 48), so
state-dict keys equal the official ones. A level the backbone lacks (LSNet has
no P1/P2) is upsampled without a skip.

``style='lsdense'`` writes the lsdense option instead: soft ``AGate`` on the skip +
``Concat`` (the 1x1 projection folded into the ``C2f``), ``SegHeadLinear`` and
``seg_loss: lsdense`` (softmax foreground, padding ignored).
"""
from __future__ import annotations

from copy import deepcopy
from typing import Dict, List, Optional

from lsdense.models import get_variant

from ..modules import FAMILY_MODULE
from ..swap import apply_scale, dump_model_yaml

__all__ = ["ayolom_yaml", "write_ayolom_yaml", "shipped_ayolom_yamls", "STYLES"]

_YOLOV8_BACKBONE = [  # Ultralytics yolov8.yaml backbone (P1 row 0, P2 row 2, P3 4, P4 6, P5 9)
    [-1, 1, "Conv", [64, 3, 2]], [-1, 1, "Conv", [128, 3, 2]], [-1, 3, "C2f", [128, True]],
    [-1, 1, "Conv", [256, 3, 2]], [-1, 6, "C2f", [256, True]], [-1, 1, "Conv", [512, 3, 2]],
    [-1, 6, "C2f", [512, True]], [-1, 1, "Conv", [1024, 3, 2]], [-1, 3, "C2f", [1024, True]],
    [-1, 1, "SPPF", [1024, 5]],
]
_YOLOV8_LEVELS = {1: 0, 2: 2, 3: 4, 4: 6, 5: 9}
_SCALES = {"n": [0.33, 0.25, 1024], "s": [0.33, 0.50, 1024]}  # yolov8.yaml


def _lsdense_backbone(name: str):
    v = get_variant(name)
    info = v.feature_info  # the registry's answer: nothing is built
    levels = [(i, f) for i, f in enumerate(info) if f["reduction"] in (2, 4, 8, 16, 32)]
    rows = [[-1, 1, FAMILY_MODULE[v.family], [v.arch, None, [i for i, _ in levels]]]]
    pmap = {}
    for pos, (_, f) in enumerate(levels):
        rows.append([0, 1, "Index", [f["num_chs"], pos]])
        pmap[f["reduction"].bit_length() - 1] = len(rows) - 1
    return rows, pmap


STYLES = ("official", "lsdense")


def ayolom_yaml(backbone: str = "yolov8", scale: str = "n", nc: int = 1,
                tasks: Optional[List[str]] = None, style: str = "official") -> dict:
    """Build an A-YOLOM model dict.

    Args:
        backbone: ``'yolov8'`` (the official model) or an lsdense variant such as ``'lolvit_s'``.
        scale: YOLOv8 scale letter for the neck and heads (``'n'`` or ``'s'``).
        nc: detection classes (A-YOLOM: 1, vehicles merged).
        tasks: segmentation task names in head order (default drivable, lane); the
            branches are written in reverse order (lane first), as officially.
        style: ``'official'`` or ``'lsdense'`` (module docstring).

    Raises:
        ValueError: unknown style or scale, or a backbone without strides 8, 16 and 32.
    """
    if style not in STYLES:
        raise ValueError(f"Unknown A-YOLOM style {style!r}; use one of {STYLES}.")
    if scale not in _SCALES:
        raise ValueError(f"Unknown A-YOLOM scale {scale!r}; use one of {sorted(_SCALES)}.")
    tasks = list(tasks or ["drivable", "lane"])
    if backbone == "yolov8":
        rows, P = deepcopy(_YOLOV8_BACKBONE), dict(_YOLOV8_LEVELS)
    else:
        rows, P = _lsdense_backbone(backbone)
    if not {3, 4, 5} <= set(P):
        raise ValueError(f"{backbone} must provide strides 8, 16 and 32; it has P{sorted(P)}.")
    nb = len(rows)

    def add(f, n, m, args) -> int:
        rows.append([f, n, m, args])
        return len(rows) - 1

    add(P[5], 1, "nn.Upsample", [None, 2, "nearest"])  # detection neck (yolov8.yaml head)
    add([-1, P[4]], 1, "Concat", [1])
    h4 = add(-1, 3, "C2f", [512])
    add(-1, 1, "nn.Upsample", [None, 2, "nearest"])
    add([-1, P[3]], 1, "Concat", [1])
    o3 = add(-1, 3, "C2f", [256])
    add(-1, 1, "Conv", [256, 3, 2])
    add([-1, h4], 1, "Concat", [1])
    o4 = add(-1, 3, "C2f", [512])
    add(-1, 1, "Conv", [512, 3, 2])
    add([-1, P[5]], 1, "Concat", [1])
    o5 = add(-1, 3, "C2f", [1024])
    branch_out = {}
    for task in (reversed(tasks) if style == "official" else tasks):  # one branch per task
        x = P[5]
        for level, c in ((4, 512), (3, 256), (2, 128), (1, 64)):
            if style == "official":
                add(x, 1, "nn.Upsample", [None, 2, "nearest"])
                if level in P:
                    add([-1, P[level]], 1, "AdaptiveConcat", [1])
            else:
                up = add(x, 1, "nn.Upsample", [None, 2, "nearest"])
                if level in P:
                    g = add(P[level], 1, "AGate", [])
                    add([up, g], 1, "Concat", [1])
            x = add(-1, 3, "C2f", [c])
        branch_out[task] = x
    add([o3, o4, o5], 1, "Detect", ["nc"])
    head = "SegHead" if style == "official" else "SegHeadLinear"
    for task in tasks:
        add(branch_out[task], 1, head, [1])
    d = {"nc": nc, "seg_tasks": list(tasks), "seg_loss": style, "scales": {scale: _SCALES[scale]},
         "backbone": rows[:nb], "head": rows[nb:]}
    return apply_scale(d, scale)


def write_ayolom_yaml(path: str, backbone: str = "yolov8", scale: str = "n", nc: int = 1,
                      style: str = "official") -> Dict:
    """Write :func:`ayolom_yaml` to ``path`` (readable rows with their indices)."""
    d = ayolom_yaml(backbone, scale, nc, style=style)
    what = ("YOLOv8 backbone, the official A-YOLOM model" if backbone == "yolov8"
            else f"lsdense {backbone} backbone")
    kind = ("structure as the official code (AdaptiveConcat, SegHead with BN+SiLU, A-YOLOM loss)"
            if style == "official" else
            "lsdense option: soft AGate, SegHeadLinear, softmax loss ignoring padding")
    dump_model_yaml(d, path, comment=f"A-YOLOM-{scale} (TVT 2024) multi-task model, {what}.\n"
                    f"{kind}.\nDetect + SegHead(drivable) + SegHead(lane); build with "
                    f"lsdense.yolo.AYOLOM.\ngenerated by lsdense.yolo.multitask.yamlgen.write_ayolom_yaml"
                    f" (see shipped_ayolom_yamls)")
    return d


def shipped_ayolom_yamls() -> Dict[str, dict]:
    """File name -> :func:`ayolom_yaml` keyword arguments of every shipped ``configs/yolo/ayolom-*.yaml``."""
    out = {f"ayolom-{s}.yaml": dict(backbone="yolov8", scale=s) for s in ("n", "s")}
    out.update({f"ayolom-{s}-lsdense.yaml": dict(backbone="yolov8", scale=s, style="lsdense")
                for s in ("n", "s")})
    out.update({f"ayolom-n-{b}.yaml": dict(backbone=b, scale="n")
                for b in ("lolvit_s", "lolvit_x", "lsnet_t")})
    return out
