"""``create_backbone``: the one way every adapter builds an lsdense backbone; and
``create_timm_model``, what every family's timm entry point calls."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import torch.nn as nn
from timm.models import build_model_with_cfg
from torch.nn.modules.batchnorm import _BatchNorm

from .checkpoint import load_checkpoint, timm_filter_fn
from .registry import get_variant


def create_backbone(name: str, out_indices: Optional[Sequence[int]] = None, frozen_stages: int = -1,
                    norm_eval: bool = False, pretrained: Union[str, Path, dict, None] = None,
                    **kwargs) -> nn.Module:
    """Build a dense-prediction backbone that returns a tuple of feature maps.

    Args:
        name: a registered variant, e.g. ``'lsnet_t'`` (see ``list_backbones()``).
        out_indices: which levels to return; default all (see ``model.feature_info``).
        frozen_stages: -1 none, 0 the stem, k the stem and the first k stages.
        norm_eval: keep BatchNorm layers in eval mode during training.
        pretrained: checkpoint path or state dict, loaded with :func:`load_checkpoint`.
        **kwargs: passed to the model class (e.g. ``drop_path_rate``, ``in_chans``).

    Returns:
        The backbone module; ``model.out_channels`` / ``model.out_strides`` describe its outputs.
    """
    variant = get_variant(name)
    args = {**variant.model_args, **variant.dense_args, **kwargs}
    model = variant.model_cls(dense=True, out_indices=out_indices, frozen_stages=frozen_stages,
                              norm_eval=norm_eval, **args)
    if pretrained is not None:
        load_checkpoint(model, pretrained)
    return model



# what timm's scripts (train.py, validate.py, benchmark.py, inference.py, onnx_export.py) pass
# to create_model besides the model's own arguments; timm.create_model drops the None ones
_NO_DROP_BLOCK = ("has no DropBlock layers (timm's ResNets have); use drop_path_rate (stochastic "
                  "depth) or drop_rate (dropout before the classifier)")


def _timm_script_args(variant: str, kwargs: dict) -> dict:
    """Pop the timm-script arguments the model classes do not take; return the BatchNorm ones.

    ``drop_block_rate``: 0 is accepted (timm's ``--drop-block`` default is None, dropped by
    ``create_model``); any other rate raises ValueError. ``bn_momentum`` / ``bn_eps``
    (``--bn-momentum`` / ``--bn-eps``, PyTorch's momentum convention, as timm's EfficientNet)
    are returned and set on every BatchNorm layer after the build (:func:`_set_bn_args`).
    """
    rate = kwargs.pop("drop_block_rate", None)
    if rate:
        raise ValueError(f"{variant}: drop_block_rate={rate} is not supported: {variant} "
                         f"{_NO_DROP_BLOCK}.")
    return {k: kwargs.pop(k) for k in ("bn_momentum", "bn_eps") if kwargs.get(k) is not None}


def _set_bn_args(model: nn.Module, variant: str, bn_args: dict) -> None:
    """Set ``momentum`` / ``eps`` of every BatchNorm layer (ValueError when it has none)."""
    if not bn_args:
        return
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    if not norms:
        given = ", ".join(f"{k}={v}" for k, v in bn_args.items())
        raise ValueError(f"{variant}: {given} is not supported: {variant} has no BatchNorm layer "
                         f"(it normalises with LayerNorm); leave the bn_* arguments unset.")
    for m in norms:
        if "bn_momentum" in bn_args:
            m.momentum = bn_args["bn_momentum"]
        if "bn_eps" in bn_args:
            m.eps = bn_args["bn_eps"]


def _feature_cfg(variant: str, feature_indices, kwargs: dict) -> dict:
    """timm's ``feature_cfg`` for a family: the getter by default (``forward_intermediates``).

    timm's module-rewriting extractors (``feature_cls='dict'`` / ``'list'``) rebuild the
    network from its top-level children, with one ``nn.Sequential`` level flattened
    (``flatten_sequential``): set when the level modules are ``stages.i`` (LOLViT,
    LiSANet), not for LSNet's top-level ``blocksN``. A level deeper than that (LiSANet-I's
    ``stages.0.blocks.i``, also normalised after the block) cannot be rebuilt: ValueError.
    """
    modules = [f["module"] for f in get_variant(variant).feature_info]
    cls = kwargs.get("feature_cls")
    if kwargs.get("features_only") and isinstance(cls, str) and cls.lower() in ("dict", "list") \
            and any(m.count(".") > 1 for m in modules):
        raise ValueError(
            f"{variant}: features_only with feature_cls={cls!r} is not supported: its levels "
            f"({modules[0]}, ...) are blocks inside a stage, which timm's module-rewriting "
            f"extractors cannot rebuild; use the default feature_cls ('getter').")
    return dict(feature_cls="getter", out_indices=feature_indices,
                flatten_sequential=any("." in m for m in modules))


def create_timm_model(model_cls: type, variant: str, pretrained: bool, model_args: dict,
                      feature_indices: Union[int, Sequence[int]], **kwargs) -> nn.Module:
    """timm's ``build_model_with_cfg`` for an lsdense variant (its ``@register_model`` body).

    Args:
        model_cls: the family's model class.
        variant: the timm name (its ``default_cfgs`` entry).
        pretrained: load the default cfg's weights (through :func:`timm_filter_fn`).
        model_args: the variant's numbers; ``kwargs`` override them.
        feature_indices: ``features_only`` default levels (an int: the last n, as ViTs).
        **kwargs: the model's arguments, timm's (``features_only``, ``feature_cls``,
            ``pretrained_cfg_overlay`` ...) and those timm's scripts pass
            (``drop_rate``, ``drop_path_rate``, ``drop_block_rate``, ``bn_momentum``,
            ``bn_eps``; see :func:`_timm_script_args`).

    Raises:
        ValueError: a timm-script argument the family has no layer for, or a
            ``feature_cls`` it cannot be rebuilt with (one line naming the fix).
    """
    bn_args = _timm_script_args(variant, kwargs)
    feature_cfg = _feature_cfg(variant, feature_indices, kwargs)
    model = build_model_with_cfg(
        model_cls, variant, pretrained, pretrained_filter_fn=timm_filter_fn,
        feature_cfg=feature_cfg, **dict(model_args, **kwargs))
    _set_bn_args(model, variant, bn_args)
    return model
