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

A-YOLOM neck/head pieces: ``AdaptiveConcat`` and ``SegHead`` as in the official
model; ``AGate`` (soft gate) and ``SegHeadLinear`` are lsdense options (docs/yolo.md).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn

from lsdense.models import create_backbone
from lsdense.models.registry import get_variant, list_backbones, variant_by_arch

__all__ = ["LSDenseBackbone", "LSNetBackbone", "LOLViTBackbone", "LiSANetBackbone",
           "HyLiSANetBackbone", "KeepBatchNorm2d", "AGate", "AdaptiveConcat", "SegHead", "SegHeadLinear",
           "SEG_HEADS", "BACKBONE_MODULES"]


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

    ``create_backbone`` builds no level after the last one returned, so unused
    stages neither cost FLOPs nor hold gradient-less parameters.
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
# the YAML module name that builds each lsdense family (LiSANet-I: LiSANetBackbone, arch 'i')
FAMILY_MODULE = {cls.family: name for name, cls in BACKBONE_MODULES.items()}


class AdaptiveConcat(nn.Module):
    """A-YOLOM adaptive concatenation (the official ``Concat_dropout``, conv.py of the fork).

    ``conv1x1(cat(x, dim))`` when ``sigmoid(weight) > 0.5``, else ``x[0]`` (the
    upsampled branch input alone). ``weight`` is a learnable scalar initialised
    to 5.0; the hard comparison gives it no gradient, so in practice it stays at
    5.0 and the module is always concatenation + 1x1 conv (with bias, no BN, no
    activation) from the concatenated width back to ``x[0]``'s width.

    Args:
        c1: channels of each input, ``x[0]`` first (filled in by
            :class:`~lsdense.yolo.multitask.MultiTaskModel`; Ultralytics' parser
            does not pass channels to plugin modules).
        c2: output channels (official: ``c1[0]``).
        dimension: concatenation dimension (1).
        gate_init: initial gate logit (official 5.0).

    Input: list of (B, c1[k], H, W) maps. Output: (B, c2, H, W).
    """

    def __init__(self, c1: Sequence[int] = (), c2: int = 0, dimension: int = 1, gate_init: float = 5.0):
        super().__init__()
        if not c1 or c2 <= 0:
            raise ValueError("AdaptiveConcat rows need the multi-task model, which fills in the input "
                             "channels: build with lsdense.yolo.AYOLOM('<yaml>'), not YOLO().")
        self.d = dimension
        self.weight = nn.Parameter(torch.tensor([float(gate_init)]))
        self.conv = nn.Conv2d(sum(c1), c2, kernel_size=1, stride=1, bias=True)

    def forward(self, x: List[torch.Tensor]) -> torch.Tensor:
        """Projected concatenation if the gate is open, else the first input."""
        if torch.sigmoid(self.weight) > 0.5:
            return self.conv(torch.cat(x, self.d))
        return x[0]


class AGate(nn.Module):
    """lsdense option: soft adaptive-concatenation gate ``sigmoid(w) * x`` on a skip before ``Concat``.

    Written as YAML rows it is ``[P4, 1, AGate, []]`` then
    ``[[-2, -1], 1, Concat, [1]]`` and a ``C2f`` (whose 1x1 input conv plays the
    part of A-YOLOM's 1x1 projection). A-YOLOM's own gate (:class:`AdaptiveConcat`)
    thresholds at 0.5, which gives it no gradient; this one is differentiable,
    initialised at ``w = 5`` (gate 0.993, skip on) as in A-YOLOM.
    """

    def __init__(self, init: float = 5.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale the skip map by the learned gate."""
        return x * self.w.sigmoid()


class SegHead(nn.Module):
    """A-YOLOM segmentation head as in the official ``Segment`` (head.py of the fork).

    ``Conv(c1, 32, 3) -> ConvTranspose2d(32, 16, 2, 2, bias) -> Conv(16, 8, 3) ->
    Conv(8, nc + 1, 1)`` with Ultralytics ``Conv`` = conv + BN + SiLU, the last
    layer included (so outputs are >= -0.279). The official class also carries
    an unused ``DFL`` (16 frozen parameters), left out here.

    Args:
        nc: foreground classes (1 for drivable area / lane line).
        c1: input channels; filled in by :class:`~lsdense.yolo.multitask.MultiTaskModel`
            (Ultralytics' parser does not pass channels to plugin modules).

    Input: the stride-2 neck map (B, c1, H/2, W/2) (or a one-element list).
    Output: (B, nc + 1, H, W) scores, background first.
    """

    def __init__(self, nc: int = 1, c1: int = 0):
        super().__init__()
        from ultralytics.nn.modules import Conv

        if c1 <= 0:
            raise ValueError(f"{type(self).__name__} rows need the multi-task model, which fills in the "
                             "input channels: build with lsdense.yolo.AYOLOM('<yaml>'), not YOLO().")
        self.nc = nc
        self.cv1 = Conv(c1, 32, 3)
        self.upsample = nn.ConvTranspose2d(32, 16, 2, 2, 0, bias=True)
        self.cv2 = Conv(16, 8, 3)
        self.cv3 = self._last(8, nc + 1)

    @staticmethod
    def _last(c1: int, c2: int) -> nn.Module:
        from ultralytics.nn.modules import Conv

        return Conv(c1, c2, 1)

    def forward(self, x: Union[torch.Tensor, List[torch.Tensor]]) -> torch.Tensor:
        """Per-pixel scores, shape (B, nc + 1, 2H, 2W)."""
        x = x[0] if isinstance(x, (list, tuple)) else x
        return self.cv3(self.cv2(self.upsample(self.cv1(x))))


class SegHeadLinear(SegHead):
    """lsdense option: :class:`SegHead` whose last layer is a plain 1x1 conv (unbounded logits)."""

    @staticmethod
    def _last(c1: int, c2: int) -> nn.Module:
        return nn.Conv2d(c1, c2, 1)


SEG_HEADS = {"SegHead": SegHead, "SegHeadLinear": SegHeadLinear}


@torch.no_grad()
def run_layers(layers, x: torch.Tensor) -> list:
    """Run the rows Ultralytics' ``parse_model`` built on ``x`` (eval mode): every row's output.

    Follows each row's ``f`` (from) index the way ``BaseModel._predict_once`` does; used to
    probe strides and channels of a partial model without building a whole one.
    """
    ys = []
    layers.eval()
    for layer in layers:
        if layer.f != -1:
            x = ys[layer.f] if isinstance(layer.f, int) else [x if j == -1 else ys[j] for j in layer.f]
        x = layer(x)
        ys.append(x)
    return ys
