"""``create_backbone``: the one way every adapter builds an lsdense backbone; and
``create_timm_model``, what every family's timm entry point calls."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import torch.nn as nn
from timm.models import build_model_with_cfg

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



def create_timm_model(model_cls: type, variant: str, pretrained: bool, model_args: dict,
                      feature_indices: Union[int, Sequence[int]], **kwargs) -> nn.Module:
    """timm's ``build_model_with_cfg`` for an lsdense variant (its ``@register_model`` body).

    Args:
        model_cls: the family's model class.
        variant: the timm name (its ``default_cfgs`` entry).
        pretrained: load the default cfg's weights (through :func:`timm_filter_fn`).
        model_args: the variant's numbers; ``kwargs`` override them.
        feature_indices: ``features_only`` default levels (an int: the last n, as ViTs).
    """
    return build_model_with_cfg(
        model_cls, variant, pretrained, pretrained_filter_fn=timm_filter_fn,
        feature_cfg=dict(feature_cls="getter", out_indices=feature_indices),
        **dict(model_args, **kwargs))
