"""Modules an Ultralytics model YAML can name once ``lsdense.yolo`` is imported.

Backbones (one per family, first argument ``arch``) return their multi-scale
maps as a list; ``Index`` rows pick the maps and declare their channels, the
pattern Ultralytics recommends for multi-output backbones (as with
``TorchVision``)::

    backbone:
      - [-1, 1, LOLViTBackbone, [s]]   # 0: list of 5 maps, strides 2..32
      - [0, 1, Index, [64, 2]]         # 1-P3/8
      - [0, 1, Index, [96, 3]]         # 2-P4/16
      - [0, 1, Index, [128, 4]]        # 3-P5/32

``AGate`` and ``SegHead`` are the A-YOLOM neck/head pieces.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn

from lsdense.models import create_backbone
from lsdense.models.registry import get_variant, list_backbones, variant_by_arch

__all__ = ["LSDenseBackbone", "LSNetBackbone", "LOLViTBackbone", "LiSANetBackbone",
           "HyLiSANetBackbone", "KeepBatchNorm2d", "AGate", "SegHead", "BACKBONE_MODULES"]


class KeepBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that keeps its pretrained eps and momentum inside Ultralytics models.

    Ultralytics' ``initialize_weights`` sets eps=1e-3 and momentum=0.03 on every
    module whose type *is* ``nn.BatchNorm2d``; backbone norms are re-typed to this
    subclass (same state dict) so their statistics and eps stay as trained.
    """


def _resolve_variant(family: str, arch: object) -> str:
    if not isinstance(arch, str):
        raise ValueError(
            f"{family} backbone: arch must be a string such as "
            f"{', '.join(repr(n.split('_', 1)[1]) for n in list_backbones(family)) or 'a registered arch'}"
            f", got {arch!r} ({type(arch).__name__}). Ultralytics replaces YAML strings that name "
            f"one of its local variables (e.g. 't'), so keep the backbone at row 0 or write "
            f"the full name, e.g. '{family}_t'.")
    if arch.startswith(f"{family}_"):
        return get_variant(arch).name
    return variant_by_arch(family, arch).name


class LSDenseBackbone(nn.Module):
    """An lsdense backbone as one Ultralytics layer that returns a list of maps.

    Args:
        arch: the variant's arch (``'t'``, ``'s'`` ...) or full name (``'lsnet_t'``).
        pretrained: optional checkpoint path, loaded with ``lsdense.models.load_checkpoint``;
            a checkpoint made for another channel count has its input conv adapted to
            ``in_chans`` as timm does (``adapt_input_conv``).
        out_indices: levels to return (default: all, see ``feature_info``).
        in_chans: input channels. In a model YAML it is filled in from the model's input
            channels (Ultralytics' ``ch``, the data YAML's ``channels``); see ``register``.
        **kwargs: passed to ``create_backbone`` (e.g. ``drop_path_rate``).

    Raises:
        FileNotFoundError: ``pretrained`` names a file that does not exist.

    Levels after the last one returned are replaced by ``nn.Identity`` so that
    unused stages neither cost FLOPs nor hold gradient-less parameters.
    """

    family: str = ""

    def __init__(self, arch: str, pretrained: Optional[Union[str, Path]] = None,
                 out_indices: Optional[Sequence[int]] = None, in_chans: int = 3, **kwargs):
        super().__init__()
        self.variant = _resolve_variant(self.family, arch)
        if not isinstance(in_chans, int) or isinstance(in_chans, bool) or in_chans < 1:
            raise ValueError(f"{type(self).__name__}: in_chans must be a positive int, got "
                             f"{in_chans!r}.")
        if isinstance(pretrained, (str, Path)) and "://" not in str(pretrained) \
                and not Path(pretrained).is_file():
            raise FileNotFoundError(
                f"{type(self).__name__}({arch!r}): backbone weights {str(pretrained)!r} not found "
                f"(relative paths are resolved against the working directory {Path.cwd()}). Fix "
                f"the path in the model YAML row, or write null to start from random weights.")
        self.body = create_backbone(self.variant, out_indices=out_indices, pretrained=pretrained,
                                    in_chans=in_chans, **kwargs)
        self.feature_info = [dict(f) for f in self.body.feature_info]
        self._prune_unused_stages()
        for m in self.body.modules():
            if type(m) is nn.BatchNorm2d:
                m.__class__ = KeepBatchNorm2d

    @property
    def out_channels(self) -> List[int]:
        """Channels of the returned maps, in order (the numbers ``Index`` rows declare)."""
        return list(self.body.out_channels)

    @property
    def out_strides(self) -> List[int]:
        """Strides of the returned maps."""
        return list(self.body.out_strides)

    def _prune_unused_stages(self) -> None:
        units = self.body._freeze_units()  # stem, then one unit per level (backbone contract)
        last = max(self.body.out_indices) + 1
        if last + 1 >= len(units):
            return
        names = {id(m): n for n, m in self.body.named_children()}
        pruned = {}
        for unit in units[last + 1:]:
            if id(unit) in names:
                pruned[names[id(unit)]] = unit
                setattr(self.body, names[id(unit)], nn.Identity())
        try:  # keep the pruning only if the family's forward still works without those stages
            size = self.body.min_input_size
            with torch.no_grad():
                self.body.eval()(torch.zeros(1, self.body.in_chans, size, size))
            self.body.train()
        except Exception:
            for name, unit in pruned.items():
                setattr(self.body, name, unit)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Return the selected feature maps (for ``Index`` rows).

        Raises:
            ValueError: the images have another channel count than the model was built for.
        """
        if isinstance(x, torch.Tensor) and x.dim() == 4 and x.shape[1] != self.body.in_chans:
            raise ValueError(
                f"{type(self).__name__} ({self.variant}) was built for {self.body.in_chans}-channel "
                f"images (Ultralytics builds the model for the data YAML's 'channels', default 3) but "
                f"got {x.shape[1]} channels, shape {tuple(x.shape)}. Set 'channels: {x.shape[1]}' in the "
                f"data YAML, or give images with {self.body.in_chans} channels (with 'channels' other "
                f"than 1 and 3, image files are read as they are: JPEG has 3 channels; use 4-channel "
                f"PNG/TIFF for RGB+IR).")
        return list(self.body(x))

    def fuse(self) -> "LSDenseBackbone":
        """Fold Conv-BN pairs of the backbone for inference (see ``lsdense`` ``fuse()``)."""
        self.body.fuse()
        return self


class LSNetBackbone(LSDenseBackbone):
    """LSNet (CVPR 2025) backbone: levels at strides 8, 16, 32, 64."""

    family = "lsnet"


class LOLViTBackbone(LSDenseBackbone):
    """LOLViT backbone: five levels at strides 2, 4, 8, 16, 32."""

    family = "lolvit"


class LiSANetBackbone(LSDenseBackbone):
    """LiSANet backbone: levels at strides 4, 8, 16, 32."""

    family = "lisanet"


class HyLiSANetBackbone(LSDenseBackbone):
    """HyLiSANet (hybrid LiSANet) backbone: levels at strides 4, 8, 16, 32."""

    family = "hylisanet"


BACKBONE_MODULES = {cls.__name__: cls for cls in
                    (LSNetBackbone, LOLViTBackbone, LiSANetBackbone, HyLiSANetBackbone)}


class AGate(nn.Module):
    """A-YOLOM adaptive concatenation gate: ``sigmoid(w) * x`` on a skip input before ``Concat``.

    A-YOLOM's adaptive concatenation learns whether a segmentation branch uses a
    backbone skip. Written as YAML rows it is ``[P4, 1, AGate, []]`` then
    ``[[-2, -1], 1, Concat, [1]]`` and a ``C2f`` (whose 1x1 input conv plays the
    part of A-YOLOM's 1x1 projection). A-YOLOM thresholds the gate at 0.5, which
    gives it no gradient; here it is a soft, differentiable gate, initialised at
    ``w = 5`` (gate 0.993, skip on) as in A-YOLOM.
    """

    def __init__(self, init: float = 5.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale the skip map by the learned gate."""
        return x * self.w.sigmoid()


class SegHead(nn.Module):
    """A-YOLOM segmentation head: conv 3x3 -> transposed conv x2 -> conv 3x3 -> conv 1x1.

    Takes the stride-2 neck map and returns ``nc + 1`` (background first) logits at
    input resolution.

    Args:
        nc: foreground classes (1 for drivable area / lane line).
        c1: input channels; filled in by :class:`~lsdense.yolo.multitask.MultiTaskModel`
            (Ultralytics' parser does not pass channels to plugin modules).
    """

    def __init__(self, nc: int = 1, c1: int = 0):
        super().__init__()
        from ultralytics.nn.modules import Conv

        if c1 <= 0:
            raise ValueError("SegHead rows need the multi-task model, which fills in the input "
                             "channels: build with lsdense.yolo.AYOLOM('<yaml>'), not YOLO().")
        self.nc = nc
        self.cv1 = Conv(c1, 32, 3)
        self.up = nn.ConvTranspose2d(32, 16, 2, 2)
        self.cv2 = Conv(16, 8, 3)
        self.cv3 = nn.Conv2d(8, nc + 1, 1)

    def forward(self, x: Union[torch.Tensor, List[torch.Tensor]]) -> torch.Tensor:
        """Per-pixel logits, shape (B, nc + 1, 2H, 2W)."""
        x = x[0] if isinstance(x, (list, tuple)) else x
        return self.cv3(self.cv2(self.up(self.cv1(x))))
