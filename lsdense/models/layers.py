"""Building blocks and the backbone contract shared by every lsdense family.

Everything here depends on torch only. Each family file (``lsnet.py``,
``lolvit.py``, ``lisanet.py``) subclasses :class:`DenseBackboneMixin` so that
``out_indices`` / ``frozen_stages`` / ``norm_eval`` / ``feature_info`` / input
checks / ``fuse()`` behave the same in every framework adapter.
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = [
    "Conv2d_BN",
    "DenseBackboneMixin",
    "fuse_modules",
    "resolve_out_indices",
]


class Conv2d_BN(nn.Sequential):
    """Conv2d without bias followed by BatchNorm2d (``c`` and ``bn``).

    The attribute names match the official LSNet/EfficientViT checkpoints.
    ``fuse()`` folds the BatchNorm into one biased Conv2d for inference.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1, bn_weight_init: float = 1.0):
        super().__init__()
        self.add_module("c", nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, dilation,
                                       groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(out_chs))
        nn.init.constant_(self.bn.weight, bn_weight_init)
        nn.init.constant_(self.bn.bias, 0)

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        return fuse_conv_bn(self.c, self.bn)


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: _BatchNorm) -> nn.Conv2d:
    """Return one Conv2d (with bias) equal to ``bn(conv(x))`` in eval mode."""
    scale = bn.weight / (bn.running_var + bn.eps).sqrt()
    bias = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                      conv.padding, conv.dilation, conv.groups, bias=True,
                      padding_mode=conv.padding_mode,
                      device=conv.weight.device, dtype=conv.weight.dtype)
    fused.weight.copy_(conv.weight * scale[:, None, None, None])
    fused.bias.copy_(bias)
    return fused


def fuse_modules(module: nn.Module) -> nn.Module:
    """Recursively replace every child that has a ``fuse()`` method by its result.

    A child's ``fuse()`` returns the module to put in its place (it may return
    itself after an in-place reparameterisation). Call on an eval-mode model.
    """
    for name, child in list(module.named_children()):
        fuse = getattr(child, "fuse", None)
        if callable(fuse) and not isinstance(child, DenseBackboneMixin):
            setattr(module, name, fuse())
        else:
            fuse_modules(child)
    return module


def resolve_out_indices(out_indices: Optional[Iterable[int]], num_outputs: int,
                        name: str) -> Tuple[int, ...]:
    """Validate ``out_indices`` (negative values count from the end)."""
    if out_indices is None:
        return tuple(range(num_outputs))
    if isinstance(out_indices, int):
        out_indices = (out_indices,)
    resolved = []
    for i in out_indices:
        if not isinstance(i, int) or not -num_outputs <= i < num_outputs:
            raise ValueError(
                f"{name}: out_indices={tuple(out_indices)} is out of range; this backbone has "
                f"{num_outputs} outputs, so valid indices are 0..{num_outputs - 1} "
                f"(or -{num_outputs}..-1).")
        resolved.append(i % num_outputs)
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"{name}: out_indices={tuple(out_indices)} has duplicates.")
    return tuple(sorted(resolved))


class DenseBackboneMixin:
    """The backbone contract every lsdense model implements.

    A subclass calls :meth:`_setup_dense` at the end of ``__init__`` and
    implements ``_freeze_units()`` (stem first, then each output stage) and
    ``_forward_levels(x)`` (all output maps, in order), plus timm's
    ``forward_head`` / ``reset_classifier`` / ``get_classifier``. It must also set
    ``self.feature_info`` (timm style list of dicts with ``num_chs``,
    ``reduction`` and ``module``) before calling ``_setup_dense``.

    Contract (mmdet/mmpretrain conventions):
        * ``out_indices``: which levels ``forward`` returns (tuple, always).
        * ``frozen_stages``: -1 freezes nothing, 0 the stem, k the stem and the
          first k stages; re-applied after every ``.train()``.
        * ``norm_eval``: BatchNorm layers stay in eval mode during training.
    """

    feature_info: List[dict]
    dense: bool = False
    in_chans: int = 3
    out_indices: Tuple[int, ...] = ()
    frozen_stages: int = -1
    norm_eval: bool = False

    def _setup_dense(self, out_indices: Optional[Sequence[int]], frozen_stages: int,
                     norm_eval: bool) -> None:
        name = type(self).__name__
        self.out_indices = resolve_out_indices(out_indices, len(self.feature_info), name)
        units = self._freeze_units()
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages < len(units):
            raise ValueError(
                f"{name}: frozen_stages={frozen_stages!r} is out of range; use -1 (nothing "
                f"frozen), 0 (stem) .. {len(units) - 1} (stem and every stage).")
        self.frozen_stages = frozen_stages
        self.norm_eval = bool(norm_eval)
        self._freeze_stages()

    # --- overridden by each family ------------------------------------------------
    def _freeze_units(self) -> List[nn.Module]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _forward_levels(self, x: torch.Tensor) -> List[torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    # --- shared behaviour ---------------------------------------------------------
    @property
    def out_channels(self) -> List[int]:
        """Channels of the maps ``forward`` returns (for necks)."""
        return [self.feature_info[i]["num_chs"] for i in self.out_indices]

    @property
    def out_strides(self) -> List[int]:
        """Strides of the maps ``forward`` returns."""
        return [self.feature_info[i]["reduction"] for i in self.out_indices]

    @property
    def min_input_size(self) -> int:
        """Smallest spatial size the network accepts: its largest stride."""
        return max(f["reduction"] for f in self.feature_info)

    def _freeze_stages(self) -> None:
        for unit in self._freeze_units()[: self.frozen_stages + 1]:
            unit.eval()
            for p in unit.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)  # type: ignore[misc]
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():  # type: ignore[attr-defined]
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear TypeError/ValueError for inputs the network cannot take."""
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} expects a torch.Tensor of shape (B, C, H, W), "
                            f"got {type(x).__name__}.")
        if x.dim() != 4:
            raise ValueError(f"{name} expects a 4-D tensor (B, C, H, W); got {x.dim()}-D "
                             f"shape {tuple(x.shape)}. Add a batch dimension with "
                             f"x.unsqueeze(0) for a single image.")
        if x.shape[1] != self.in_chans:
            raise ValueError(f"{name} was built for in_chans={self.in_chans} but the input "
                             f"has {x.shape[1]} channels (shape {tuple(x.shape)}). Build it with "
                             f"in_chans={x.shape[1]} or convert the input.")
        if not x.is_floating_point():
            raise TypeError(f"{name} expects a floating-point tensor, got {x.dtype}; "
                            f"use x.float().")
        m = self.min_input_size
        if x.shape[-2] < m or x.shape[-1] < m:
            raise ValueError(f"{name}: input {tuple(x.shape[-2:])} is too small; its total "
                             f"stride is {m}, so height and width must be at least {m}.")

    def forward(self, x: torch.Tensor):
        """Dense mode: tuple of maps (``out_indices``); classification mode: logits."""
        if self.dense:
            return self.forward_dense(x)
        self.check_input(x)
        return self.forward_head(self.forward_features(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (before pooling), as timm models define it."""
        return self._forward_levels(x)[-1]

    def forward_intermediates(self, x: torch.Tensor, indices=None, norm: bool = False,
                              stop_early: bool = False, output_fmt: str = "NCHW",
                              intermediates_only: bool = False):
        """timm's feature API (used by ``features_only=True``)."""
        from timm.models._features import feature_take_indices
        if output_fmt != "NCHW":
            raise ValueError(f"{type(self).__name__} only produces NCHW feature maps.")
        take, _ = feature_take_indices(len(self.feature_info), indices)
        self.check_input(x)
        levels = self._forward_levels(x)
        inter = [levels[i] for i in take]
        return inter if intermediates_only else (levels[-1], inter)

    def prune_intermediate_layers(self, indices=1, prune_norm: bool = False,
                                  prune_head: bool = True):
        """timm's feature API: drop the classifier, return the indices taken."""
        from timm.models._features import feature_take_indices
        take, _ = feature_take_indices(len(self.feature_info), indices)
        if prune_head:
            self.reset_classifier(0)
        return take

    def forward_dense(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Multi-scale maps selected by ``out_indices`` (a tuple, as mm necks expect)."""
        self.check_input(x)
        levels = self._forward_levels(x)
        return tuple(levels[i] for i in self.out_indices)

    @torch.no_grad()
    def fuse(self):
        """Fold Conv-BN pairs and reparameterise branches for inference (in place).

        Returns ``self`` in eval mode; outputs are preserved up to float rounding.
        """
        self.eval()  # type: ignore[attr-defined]
        fuse_modules(self)  # type: ignore[arg-type]
        return self


def drop_path_rates(depths: Sequence[int], drop_path_rate: float) -> List[List[float]]:
    """Stochastic-depth rate per block, linearly increasing over all blocks."""
    rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
    out, i = [], 0
    for d in depths:
        out.append(rates[i:i + d])
        i += d
    return out


def resize_hw(x: torch.Tensor, size: Tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    """Resize the last two dims of any tensor (adds/removes the batch dims F needs)."""
    lead = x.shape[:-2]
    y = F.interpolate(x.reshape(1, -1, *x.shape[-2:]), size=size, mode=mode,
                      align_corners=False)
    return y.reshape(*lead, *size)
