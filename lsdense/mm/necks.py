"""``LSNetFPN``: the LSNet dense-prediction neck (FPN plus transposed-conv levels).

LSNet's first stage has stride 8, but Mask R-CNN's RPN and RoI extractor expect
strides 4-64. The paper's neck (official name ``LSNetFPN``, from EfficientViT's
FPN) is mmdet's FPN with ``num_extra_trans_convs`` finer levels: after the
top-down pass, the finest lateral goes through a 2x2 stride-2 transposed conv
(``extra_trans_convs``, norm/act as the FPN's, no norm when
``no_norm_on_lateral``) and a 3x3 conv (``extra_fpn_convs``). Attribute names
follow the official model so its Mask R-CNN checkpoints map key for key.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.models.necks import FPN

__all__ = ["LSNetFPN"]


class LSNetFPN(FPN):
    """FPN with ``num_extra_trans_convs`` extra finer levels (strides /2, /4, ...).

    Args:
        in_channels: channels of each backbone output.
        out_channels: channels of every output level.
        num_outs: total outputs, the transposed-conv levels included (Mask
            R-CNN with LSNet: 5 = one stride-4 level + strides 8-64).
        num_extra_trans_convs: finer levels added below the finest input.
        **kwargs: mmdet ``FPN`` arguments (``start_level``, ``add_extra_convs``,
            ``norm_cfg``, ``act_cfg``, ``upsample_cfg``, ``init_cfg`` ...).

    ``extra_trans_convs[i]`` / ``extra_fpn_convs[i]`` make the level
    ``2**(i+1)`` times finer than the finest input; outputs are ordered finest
    first, as every mmdet head expects.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int, num_outs: int,
                 num_extra_trans_convs: int = 0, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, act_cfg: Optional[dict] = None,
                 no_norm_on_lateral: bool = False, **kwargs) -> None:
        if not 0 <= num_extra_trans_convs < num_outs:
            raise ValueError(f"LSNetFPN: num_extra_trans_convs={num_extra_trans_convs} must be "
                             f"in 0..num_outs-1 (num_outs={num_outs}).")
        super().__init__(list(in_channels), out_channels, num_outs - num_extra_trans_convs,
                         conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg,
                         no_norm_on_lateral=no_norm_on_lateral, **kwargs)
        self.num_outs = num_outs
        self.num_extra_trans_convs = num_extra_trans_convs
        self.extra_trans_convs = nn.ModuleList()
        self.extra_fpn_convs = nn.ModuleList()
        for _ in range(num_extra_trans_convs):
            self.extra_trans_convs.append(ConvModule(
                out_channels, out_channels, 2, stride=2, padding=0,
                conv_cfg=dict(type="deconv"),
                norm_cfg=None if no_norm_on_lateral else norm_cfg, act_cfg=act_cfg,
                inplace=False))
            self.extra_fpn_convs.append(ConvModule(
                out_channels, out_channels, 3, padding=1, conv_cfg=conv_cfg,
                norm_cfg=norm_cfg, act_cfg=act_cfg, inplace=False))

    def _upsample_to(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if "scale_factor" in self.upsample_cfg:
            return F.interpolate(x, **self.upsample_cfg)
        return F.interpolate(x, size=like.shape[2:], **self.upsample_cfg)

    def forward(self, inputs: Tuple[torch.Tensor, ...]) -> Tuple[torch.Tensor, ...]:
        """Return ``num_outs`` maps, finest (transposed-conv) level first."""
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"LSNetFPN: got {len(inputs)} inputs, configured for "
                             f"{len(self.in_channels)} (in_channels={self.in_channels}).")
        laterals = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):  # top-down pass
            laterals[i - 1] = laterals[i - 1] + self._upsample_to(laterals[i], laterals[i - 1])
        finer: List[torch.Tensor] = []
        x = laterals[0]
        for trans, conv in zip(self.extra_trans_convs, self.extra_fpn_convs):
            x = trans(x)
            finer.insert(0, conv(x))
        outs = [conv(lat) for conv, lat in zip(self.fpn_convs, laterals)]
        for _ in range(self.num_outs - len(finer) - len(outs)):  # coarser levels (P6, P7)
            outs.append(self._extra_level(inputs, laterals, outs))
        return tuple(finer + outs)

    def _extra_level(self, inputs, laterals, outs) -> torch.Tensor:
        """One coarser level, as mmdet's FPN makes it (max pool or a stride-2 conv)."""
        used = len(laterals)
        if not self.add_extra_convs:
            return F.max_pool2d(outs[-1], 1, stride=2)
        conv = self.fpn_convs[len(outs)]
        if len(outs) > used:  # second and later extra convs take the previous output
            x = outs[-1]
            return conv(F.relu(x) if self.relu_before_extra_convs else x)
        source = {"on_input": inputs[self.backbone_end_level - 1], "on_lateral": laterals[-1],
                  "on_output": outs[-1]}[self.add_extra_convs]
        return conv(source)
