"""Variant table shared by ``create_backbone`` and the framework adapters.

Each family file registers its variants here (name -> model class, the
variant's numbers, and the extra arguments its dense-prediction backbone
uses), next to its timm ``@register_model`` entry points. A :class:`Variant` also
answers, without building a model, what adapters ask of a backbone: its levels'
channels, strides and module names, and the default ``out_indices``. Each variant also
carries what its paper and official code publish (:class:`Published`, from
``PUBLISHED`` below): the one place tests, the benchmark and the docs read
those figures from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type

import torch.nn as nn


@dataclass(frozen=True)
class Figure:
    """One published number.

    Attributes:
        value: the number as ``source`` gives it (unit in the field's name).
        source: where it comes from: the paper's table, or the official
            repository's file (e.g. a training log) when that produced it.
        paper: the paper's figure for the same quantity when ``source`` is not
            the paper (``None`` when the paper gives none).
    """

    value: float
    source: str
    paper: Optional[float] = None

    def paper_differs(self) -> bool:
        """True when the paper's figure is not ``value`` rounded to the paper's digits."""
        if self.paper is None:
            return False
        digits = len(repr(float(self.paper)).split(".")[1])
        return round(self.value, digits) != self.paper


@dataclass(frozen=True)
class Published:
    """What a variant's paper and official code publish (quoted, not measured here).

    Attributes:
        params_m: parameters in millions (the paper's "Params") of the
            classification model, or of the backbone without classifier when
            ``params_include_head`` is False (LOLViT's tables).
        gmacs: the paper's "FLOPs" (multiply-accumulates, G) at ``flops_input``.
        flops_input: square input side ``gmacs`` is quoted at.
        top1: ImageNet-1K top-1 (%) at 224 unless its source says otherwise.
        top1_distilled: the same with knowledge distillation, when published.
        params: exact parameter count (``params_m``'s model), when one is known;
            ``params_source`` says where from.
        backbone_params: exact count of the official dense backbone (no
            classifier), when one was run.
        params_include_head: whether ``params_m`` / ``params`` count the classifier.
        dense: dense-prediction results per lsdense config (its file stem under
            ``configs/`` or ``configs/yolo/``), metric name -> :class:`Figure`.
    """

    params_m: Figure
    gmacs: Figure
    flops_input: int = 224
    top1: Optional[Figure] = None
    top1_distilled: Optional[Figure] = None
    params: Optional[int] = None
    backbone_params: Optional[int] = None
    params_source: str = ""
    params_include_head: bool = True
    dense: Mapping[str, Mapping[str, Figure]] = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """One registered backbone variant: what adapters need to know without building it.

    Attributes:
        name: timm / ``create_backbone`` name, ``<family>_<arch>``.
        family: ``'lsnet'``, ``'lolvit'``, ``'lisanet'`` or ``'hylisanet'``.
        arch: the letter adapters take (``arch='t'``).
        model_cls: the core model class (classification and dense backbone).
        model_args: the variant's numbers (constructor arguments).
        dense_args: extra arguments of its dense backbone (``create_backbone``).
        feature_info: the dense backbone's ``feature_info`` (every level: ``num_chs``,
            ``reduction``, ``module``), computed from the arguments by the class
            (:meth:`~lsdense.models.layers.DenseBackboneMixin.feature_info_for`).
        out_indices: the levels ``create_backbone(name)`` returns by default.
        published: see :class:`Published`.
    """

    name: str
    family: str
    arch: str
    model_cls: Type[nn.Module]
    model_args: dict
    dense_args: dict = field(default_factory=dict)
    feature_info: Tuple[Mapping, ...] = ()
    out_indices: Tuple[int, ...] = ()
    published: Optional[Published] = None

    @property
    def channels(self) -> List[int]:
        """Channels of every level (``feature_info`` order)."""
        return [f["num_chs"] for f in self.feature_info]

    @property
    def strides(self) -> List[int]:
        """Stride (reduction) of every level."""
        return [f["reduction"] for f in self.feature_info]

    @property
    def modules(self) -> List[str]:
        """Attribute path of every level's module (for torch.fx / pruning)."""
        return [f["module"] for f in self.feature_info]


_VARIANTS: Dict[str, Variant] = {}


def register_variants(family: str, model_cls: Type[nn.Module], model_args: Dict[str, dict],
                      dense_args: dict | None = None) -> None:
    """Register every ``<family>_<arch>`` variant of a family (idempotent)."""
    for name, args in model_args.items():
        arch = name.split("_", 1)[1]
        dense = dict(dense_args or {})
        cls: Any = model_cls  # a DenseBackboneMixin subclass
        info = tuple(MappingProxyType(dict(f)) for f in cls.feature_info_for(**args, **dense))
        _VARIANTS[name] = Variant(name, family, arch, model_cls, dict(args), dense, info,
                                  tuple(cls.default_out_indices(len(info))), PUBLISHED.get(name))


def list_backbones(family: str | None = None) -> List[str]:
    """Names accepted by ``create_backbone`` (optionally of one family)."""
    return sorted(n for n, v in _VARIANTS.items() if family is None or v.family == family)


def get_variant(name: str) -> Variant:
    """Look a variant up by name, with an error that lists the valid names."""
    try:
        return _VARIANTS[name]
    except KeyError:
        raise ValueError(f"Unknown backbone {name!r}. Valid names: {', '.join(list_backbones())}."
                         ) from None


def variant_by_arch(family: str, arch: str) -> Variant:
    """Look a variant up by family and arch (as adapters take it: ``arch='t'``)."""
    archs = {v.arch: v for v in _VARIANTS.values() if v.family == family}
    if arch not in archs:
        raise ValueError(f"Unknown arch {arch!r} for {family}. Valid archs: "
                         f"{', '.join(sorted(archs))}.")
    return archs[arch]


# --- published figures ---------------------------------------------------------------

_LSNET = "LSNet (Wang et al., CVPR 2025)"
_LOLVIT = "LOLViT (Li et al., arXiv 2508.01385)"
_LISA = "LiSA (Kwon et al.)"


def _log(value: float, paper: float, file: str, last: str) -> Figure:
    return Figure(value, f"official log THU-MIG/lsnet {file}, last {last}", paper=paper)


def _lsnet(arch: str, params_m, gmacs, top1, top1_kd, params, backbone_params,
           retina, box, mask, miou) -> Published:
    """LSNet: paper ImageNet table, counts of the official code, official dense logs."""
    table = f"{_LSNET} ImageNet-1K table"
    det, seg = f"detection/logs/lsnet_{arch}_", f"segmentation/logs/lsnet_{arch}_semfpn.json"
    return Published(
        params_m=Figure(params_m, table), gmacs=Figure(gmacs, table), top1=Figure(top1, table),
        top1_distilled=Figure(top1_kd, f"{table} (LSNet-{arch.upper()}*, distilled)"),
        params=params, backbone_params=backbone_params,
        params_source="official code THU-MIG/lsnet (model/lsnet.py, counted on CPU)",
        dense={
            f"retinanet_lsnet_{arch}_coco": {
                "bbox_mAP": _log(*retina, det + "retinanet.json", "epoch (12)")},
            f"mask-rcnn_lsnet_{arch}_coco": {
                "bbox_mAP": _log(*box, det + "maskrcnn.json", "epoch (12)"),
                "segm_mAP": _log(*mask, det + "maskrcnn.json", "epoch (12)")},
            f"fpn_lsnet_{arch}_ade20k": {"mIoU": _log(*miou, seg, "iteration (40k)")},
        })


def _lolvit(name: str, params_m, gmacs, top1, params, yolo_gflops, coco_map, voc_params_m,
            voc_map) -> Published:
    """LOLViT: Tables 1 / 3, per-module Tables 16 / 17 summed, YOLO-head detection."""
    t1 = f"{_LOLVIT} Table 1"
    return Published(
        params_m=Figure(params_m, t1), gmacs=Figure(gmacs, t1 + " (Table 3: at 384x384)"),
        flops_input=384, top1=Figure(top1, f"{_LOLVIT} Table 3 (224x224)"),
        params=params, params_include_head=False,
        params_source=f"{_LOLVIT} Tables 16 / 17 (per module, no classifier)",
        dense={
            f"{name}-coco": {"mAP50-95": Figure(coco_map, f"{_LOLVIT} Table 5 (YOLO head, 640)"),
                             "GFLOPs@640": Figure(yolo_gflops, f"{_LOLVIT} Table 5 (YOLO head)")},
            f"{name}-voc": {"mAP50": Figure(voc_map, f"{_LOLVIT} Table 7 (YOLO head, 640)"),
                            "params_m": Figure(voc_params_m, f"{_LOLVIT} Table 7 (YOLO head)")},
        })


def _lisa(params_m, gmacs, top1, table: str, dense=None) -> Published:
    src = f"{_LISA} {table}"
    return Published(params_m=Figure(params_m, src), gmacs=Figure(gmacs, src),
                     top1=Figure(top1, src), dense=dense or {})


PUBLISHED: Dict[str, Published] = {
    # LSNet: paper (poster) tables; exact counts of the official models run on CPU
    # (../shared/specs/lsnet.md; LSNet-B's 23,313,608 is 23.3 M, the paper prints 23.2);
    # dense results from the official logs (final epoch / iteration, not best), each with
    # the paper's figure
    "lsnet_t": _lsnet("t", 11.4, 0.3, 74.9, 76.1, 11_409_832, 11_027_664,
                      (34.16, 34.2), (35.01, 35.0), (32.66, 32.7), (40.06, 40.1)),
    "lsnet_s": _lsnet("s", 16.1, 0.5, 77.8, 79.0, 16_146_304, 15_700_008,
                      (36.50, 36.7), (37.41, 37.4), (34.83, 34.8), (41.56, 41.0)),
    "lsnet_b": _lsnet("b", 23.2, 1.3, 80.3, 81.6, 23_313_608, 22_803_184,
                      (39.17, 39.2), (40.83, 40.8), (37.79, 37.8), (43.09, 43.0)),
    # LOLViT: Table 1 / 3 (the FLOPs are labelled 384x384); exact backbone counts are the sums of
    # the per-module Tables 16 / 17; detection with a YOLO head (Tables 5 and 7)
    "lolvit_s": _lolvit("lolvit_s", 1.1, 5.9, 67.43, 1_056_669, 7.2, 37.8, 1.6, 74.5),
    "lolvit_x": _lolvit("lolvit_x", 1.9, 9.2, 72.53, 1_862_709, 14.5, 41.9, 3.6, 77.5),
    # LiSA: Tab. 5 (hierarchical models, ImageNet-1K), Tab. 3(c) (LiSANet-I, D = 16);
    # Mask R-CNN 1x Tab. 9, Semantic FPN 80k Tab. 10
    "lisanet_s": _lisa(25.0, 3.9, 83.4, "Tab. 5", {
        "mask-rcnn_lisanet_s_coco": {"bbox_mAP": Figure(47.2, f"{_LISA} Tab. 9"),
                                     "segm_mAP": Figure(42.2, f"{_LISA} Tab. 9")},
        "fpn_lisanet_s_ade20k": {"mIoU": Figure(49.2, f"{_LISA} Tab. 10")}}),
    "lisanet_b": _lisa(51.0, 10.4, 84.6, "Tab. 5"),
    "hylisanet_s": _lisa(24.0, 4.5, 83.7, "Tab. 5", {
        "mask-rcnn_hylisanet_s_coco": {"bbox_mAP": Figure(47.7, f"{_LISA} Tab. 9"),
                                       "segm_mAP": Figure(42.6, f"{_LISA} Tab. 9")},
        "fpn_hylisanet_s_ade20k": {"mIoU": Figure(49.3, f"{_LISA} Tab. 10")}}),
    "hylisanet_b": _lisa(50.0, 11.7, 85.0, "Tab. 5"),
    "lisanet_i": _lisa(6.36, 1.21, 74.9, "Tab. 3(c)"),
}
