"""MMDetection / MMSegmentation backbones: thin wrappers around ``create_backbone``.

One class per family, registered under the same name in the ``MODELS``
registry of mmdet and of mmseg (see :mod:`lsdense.mm.register`)::

    backbone=dict(type='LSNetBackbone', arch='t', out_indices=(0, 1, 2, 3),
                  frozen_stages=-1, norm_eval=True,
                  init_cfg=dict(type='Pretrained', checkpoint='lsnet_t.pth'))

The network is ``self.body``, the same module ``create_backbone`` returns, so
``out_indices`` / ``frozen_stages`` / ``norm_eval`` behave as in every other
framework (re-applied by ``train()``). ``init_cfg=dict(type='Pretrained')`` is
served by :func:`lsdense.models.load_checkpoint` instead of mmengine's loader:
that one silently loads nothing from ``{'model': ...}`` files and cannot resize
LSNet attention biases or LiSA kernels; ours reports every missing/unexpected
key by name and raises when nothing matches.
"""
from __future__ import annotations

import copy
import logging
from typing import Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import update_init_info

from lsdense.models import create_backbone, load_checkpoint, variant_by_arch

__all__ = ["LSDenseBackbone", "LSNetBackbone", "LOLViTBackbone", "LiSANetBackbone"]


class LSDenseBackbone(BaseModule):
    """Base class: builds ``family``'s ``arch`` variant and serves ``init_cfg``.

    Args:
        arch: the variant within the family (``'t'``, ``'s'``, ...).
        out_indices: which levels to return (default: all of the variant's).
        frozen_stages: -1 none, 0 the stem, k the stem and the first k stages.
        norm_eval: keep BatchNorm layers in eval mode during training.
        init_cfg: mmengine init config; ``type='Pretrained'`` (with ``checkpoint``
            and optional ``prefix``) loads through :func:`lsdense.models.load_checkpoint`.
        family: overrides the class's ``family`` (LiSANet's ``hybrid`` flag).
        **model_kwargs: family arguments passed to the model (``drop_path_rate``, ...).
    """

    family: str = ""

    def __init__(self, arch: str, out_indices: Optional[Sequence[int]] = None,
                 frozen_stages: int = -1, norm_eval: bool = False,
                 init_cfg: Optional[dict] = None, family: Optional[str] = None,
                 **model_kwargs) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch = arch
        if family is not None:
            self.family = family
        variant = variant_by_arch(self.family, arch)
        self.body = create_backbone(variant.name, out_indices=out_indices,
                                    frozen_stages=frozen_stages, norm_eval=norm_eval,
                                    **model_kwargs)

    @property
    def out_channels(self) -> Sequence[int]:
        """Channels of the returned maps (the neck's ``in_channels``)."""
        return self.body.out_channels

    @property
    def out_strides(self) -> Sequence[int]:
        """Strides of the returned maps."""
        return self.body.out_strides

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the feature maps selected by ``out_indices`` (a tuple)."""
        return tuple(self.body(x))

    def init_weights(self) -> None:
        """Run mmengine's initialisers, then load a ``Pretrained`` checkpoint with ours."""
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        pretrained = [c for c in cfgs if c and c.get("type") == "Pretrained"]
        if not pretrained:
            super().init_weights()
            return
        own, self.init_cfg = self.init_cfg, [c for c in cfgs if c and c.get("type") != "Pretrained"]
        try:
            super().init_weights()
        finally:
            self.init_cfg = own
        for cfg in pretrained:
            self.load_pretrained(cfg["checkpoint"], prefix=cfg.get("prefix"))

    def load_pretrained(self, checkpoint: str, prefix: Optional[str] = None) -> None:
        """Load ``checkpoint`` (optionally only its ``prefix.*`` keys) into ``self.body``."""
        from lsdense.models.checkpoint import read_checkpoint, unwrap_state_dict

        source = checkpoint
        if prefix:
            sd = unwrap_state_dict(read_checkpoint(checkpoint))
            prefix = prefix if prefix.endswith(".") else prefix + "."
            source = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
            if not source:
                raise ValueError(f"{type(self).__name__}: no key of {checkpoint} starts with "
                                 f"prefix {prefix!r} (e.g. {list(sd)[:3]}).")
        result = load_checkpoint(self.body, source)
        name = type(self).__name__
        print_log(f"{name}: loaded {checkpoint}", logger="current")
        if result.missing_keys:
            print_log(f"{name}: missing keys (left at init): {', '.join(result.missing_keys)}",
                      logger="current", level=logging.WARNING)
        if result.unexpected_keys:
            print_log(f"{name}: unexpected keys (ignored): {', '.join(result.unexpected_keys)}",
                      logger="current", level=logging.WARNING)
        if result.resized_keys:
            print_log(f"{name}: resized: {', '.join(result.resized_keys)}", logger="current")
        if hasattr(self, "_params_init_info"):
            update_init_info(self, init_info=f"Loaded from {checkpoint} by lsdense.load_checkpoint")
        self._is_init = True


class LSNetBackbone(LSDenseBackbone):
    """LSNet (CVPR 2025) backbone: archs ``'t'``, ``'s'``, ``'b'``; strides 8, 16, 32, 64.

    Args:
        arch: ``'t'``, ``'s'`` or ``'b'``.
        out_indices: levels to return, default ``(0, 1, 2, 3)``.
        frozen_stages: -1 .. 4 (0 = the stem, the stride-8 patch embedding).
        norm_eval: BatchNorm in eval mode while training (the paper's detection setting).
        drop_path_rate: stochastic depth (the official model uses none).
        ska_impl: ``'auto'`` | ``'fast'`` | ``'reference'`` SKA implementation.
        attn_bias_mode: ``'matrix'`` (official bicubic resize of the bias matrix) or ``'table'``.
        init_cfg: see :class:`LSDenseBackbone`.
    """

    family = "lsnet"

    def __init__(self, arch: str = "t", out_indices: Optional[Sequence[int]] = (0, 1, 2, 3),
                 frozen_stages: int = -1, norm_eval: bool = False, drop_path_rate: float = 0.0,
                 ska_impl: str = "auto", attn_bias_mode: str = "matrix",
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(arch, out_indices, frozen_stages, norm_eval, init_cfg,
                         drop_path_rate=drop_path_rate, ska_impl=ska_impl,
                         attn_bias_mode=attn_bias_mode)


class LOLViTBackbone(LSDenseBackbone):
    """LOLViT backbone: archs ``'s'``, ``'x'``; five levels at strides 2, 4, 8, 16, 32.

    Args:
        arch: ``'s'`` or ``'x'``.
        out_indices: levels to return, default ``(2, 3, 4)`` (strides 8-32, for
            RetinaNet); Mask R-CNN / Semantic FPN use ``(1, 2, 3, 4)``.
        frozen_stages: -1 .. 5 (0 = the stride-2 stem, k = up to level k).
        norm_eval: BatchNorm in eval mode while training.
        drop_path_rate: stochastic depth over the transformer layers.
        init_cfg: see :class:`LSDenseBackbone`.
    """

    family = "lolvit"

    def __init__(self, arch: str = "s", out_indices: Optional[Sequence[int]] = (2, 3, 4),
                 frozen_stages: int = -1, norm_eval: bool = False, drop_path_rate: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(arch, out_indices, frozen_stages, norm_eval, init_cfg,
                         drop_path_rate=drop_path_rate)


class LiSANetBackbone(LSDenseBackbone):
    """LiSANet / HyLiSANet / LiSANet-I backbone.

    ``arch`` is ``'s'``, ``'b'`` (LiSANet, strides 4-32) or ``'i'`` (the isotropic
    LiSANet-I, one stride-16 level); ``hybrid=True`` selects HyLiSANet (``'s'``,
    ``'b'``: convolutional first two stages). A flag rather than more arch
    letters, so configs read like the paper: ``arch='s', hybrid=True`` is HyLiSANet-S.

    Args:
        arch: ``'s'``, ``'b'`` or ``'i'`` (``'s'``/``'b'`` with ``hybrid``).
        hybrid: build HyLiSANet instead of LiSANet.
        out_indices: levels to return, default all.
        frozen_stages: -1 .. 4 (0 = the stride-4 patch embedding).
        norm_eval: BatchNorm (HyLiSANet conv blocks) in eval mode while training.
        drop_path_rate: stochastic depth (paper: 0.1 Mask R-CNN, 0.15 Semantic FPN).
        init_cfg: see :class:`LSDenseBackbone`.
    """

    family = "lisanet"

    def __init__(self, arch: str = "s", hybrid: bool = False,
                 out_indices: Optional[Sequence[int]] = None, frozen_stages: int = -1,
                 norm_eval: bool = False, drop_path_rate: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(arch, out_indices, frozen_stages, norm_eval, init_cfg,
                         family="hylisanet" if hybrid else "lisanet",
                         drop_path_rate=drop_path_rate)
        self.hybrid = hybrid
