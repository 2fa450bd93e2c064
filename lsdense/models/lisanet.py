"""LiSANet, HyLiSANet and LiSANet-I: backbones built on Lightweight Structure-aware Attention.

Paper: `Lightweight Structure-Aware Attention for Visual Understanding`
(Kwon, Castro, Marin-Jimenez, Guil, Alahari). No official code is public; this
file follows the project spec (``specs/lisa.md``), which reconstructs the
equations (lost from the paper's text) from its prose, its parameter tables and
the authors' earlier Relational Self-Attention.

The operator, per head, on an H x W token grid (N = H * W), ``dk`` channels per
head, ``D`` structural patterns:

    q, k, v   = split(conv1x1(x)),  q_hat, k_hat = L2-normalised over channels
    s[i, d]   = sum_c q_hat[i, c] * (R1[d, c] (*) k_hat[:, c])[i]      (Eq. 11/12)
    y[i, c]   = sum_d s[i, d]     * (R2[d]    (*) v[:, c])[i]          (Eq. 10/12)

with ``(*)`` a circular 2-D convolution over the whole grid, computed as
``irfft2(rfft2(x) * rfft2(kernel))`` (Eq. 13/14). The operator, its forms and
:func:`~lsdense.models.lisa.lisa_direct` (the same equations evaluated directly, O(N^2):
the tests' oracle) live in :mod:`lsdense.models.lisa`.

Decisions (spec = taken by ``specs/lisa.md``; ours = taken here):
    * (spec) ``R1`` is ``dk * D`` kernels of N taps shared by all heads and ``R2``
      ``D`` kernels shared by all channels and heads: ``(dk + 1) * N * D``
      parameters per layer, which reproduces the paper's D ablation exactly.
    * (spec) no softmax; q and k L2-normalised with ``eps`` inside the sqrt
      (ours: ``eps = 1e-6``). The paper's extra projection of the D-vector
      (Eq. 10) is not part of the spec's operator and is left out.
    * (spec) kernels are stored in the spatial domain, centred (zero offset at
      index ``(H0 // 2, W0 // 2)``) at the training grid (224 input: 56, 28, 14,
      7; LiSANet-I: 14). For another grid the centred kernel is resized bicubic
      and shifted back (``ifftshift``). Ours: the resize maps zero offset to zero
      offset exactly (``grid_sample`` on explicit offsets, periodic wrap for the
      border taps, since the kernels are circular) and multiplies by
      ``H0 * W0 / (H * W)`` so the kernel sum (its DC gain) is kept, as GFNet's
      frequency-domain interpolation keeps it; without this a kernel stretched
      to an 800 x 1333 image would scale ``s`` and ``y`` by ~20x each.
    * (ours) the convolutions run two patterns per complex transform
      (:func:`~lsdense.models.lisa.lisa_reference`: ``x (*) r_d + i x (*) r_e`` from one ``ifft2``), since
      torch's complex inverse FFT on CPU is several times faster per map than its real one;
      same values as the real-FFT forms (tested).
    * (ours) spectra of the resized kernels are cached per (H, W, device, dtype)
      in eval mode only, validated against the parameters' ``_version`` (any
      in-place update, e.g. ``load_state_dict`` or an optimiser step), cleared by
      ``train()``, at most ``LiSA.cache_size`` grids per layer.
    * (ours) the FFT path runs in float32 at least (half-precision FFTs only
      support power-of-two sizes on CUDA); kernels init ``trunc_normal(0.02)``.
    * (spec) LiSA block: conv position embedding (dw 3x3, residual), LN -> LiSA
      -> residual, LN -> conv-MLP (1x1, dw 3x3, GELU, 1x1) -> residual, DropPath.
      MLP ratios 4, 4, 3, 3; D = 8 (hierarchical), 16 (isotropic).
    * (ours, PVTv2 as the paper cites it) overlapping patch embeddings: conv 7x7
      stride 4 then conv 3x3 stride 2 (padding k // 2, so every level has
      ``ceil(H / stride)`` rows for any input), each followed by LayerNorm; a
      LayerNorm closes every stage (the dense outputs are normalised); head =
      global average pooling + Linear.
    * (spec: pw -> dw -> pw, residual; ours: the rest) HyLiSANet conv block =
      BN -> pw (C -> 6C) -> GELU -> dw 3x3 -> GELU -> pw (6C -> C), residual, an
      inverted bottleneck with MobileNetV2's expansion 6. The width is set from the
      paper's FLOPs: LiSANet-S/-B, counted like the paper (convolutions and
      matmuls only), give 3.90 / 10.41 GMACs against 3.9 / 10.4, which pins the
      shared layout; HyLiSANet's remaining gap then asks ~12.4-12.8 C^2 MACs per
      token per conv block, i.e. expansion 6 (12 C^2). ``fuse()`` folds the BN
      into the first pw conv.
    * (spec) LiSANet-I: patch 16, learnable absolute position embedding (bicubic
      resized for other grids), 12 blocks with a plain MLP, final LayerNorm; the
      input is zero-padded to a multiple of 16 so it follows the dense contract
      as one stride-16 level.
    * (ours) drop path defaults to 0 (timm convention); the paper uses 0.1 / 0.4
      (LiSANet-S / -B, ImageNet), 0.1 (Mask R-CNN), 0.15 (Semantic FPN).

FLOPs: ``FlopCounterMode`` sees the convolutions and the head but not the FFTs
nor the LiSA weighted sums; ``lsdense.models.count_flops`` adds them (formula in
:meth:`LiSA.extra_flops`: ``2.5 N log2 N`` real flops per real 2-D FFT).
"""

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, LayerNorm2d, to_2tuple, trunc_normal_
from timm.models import checkpoint_seq, generate_default_cfgs, register_model

from .factory import create_timm_model
from .forms import refuse_capture, register_forms
from .layers import (DenseBackboneMixin, check_global_pool, drop_path_rates, factory_kwargs,
                     resize_hw, resize_hw_matrix)
from .lisa import LiSA, resize_kernel
from .registry import register_variants

__all__ = ["LiSANet", "LiSANetI", "LiSABlock", "ConvBlock", "LiSABlockFast", "ConvBlockFast",
           "MODEL_ARGS"]

_KERNEL_SUFFIXES = (".attn.r1", ".attn.r2")


# --- blocks ------------------------------------------------------------------------

_ROW_STRIP_BYTES = 4 << 20  # hidden bytes per strip and thread (best of 1-8 MB, 1 thread, 640 px)


def residual_mlp_rows(x: torch.Tensor, norm: nn.Module, fc1: nn.Module, dw: nn.Conv2d,
                      fc2: nn.Module, gelu_first: bool) -> torch.Tensor:
    """``x + fc2(gelu(dw([gelu](fc1(norm(x))))))`` computed in strips of rows (inference).

    The expanded hidden maps of the conv-MLPs and HyLiSANet conv blocks (4-6x the block
    width; 26-39 MB at 640 px input) otherwise stream through memory once per op and are
    freshly allocated (page faults) each time; a strip of rows (:data:`_ROW_STRIP_BYTES`
    of hidden activations) stays in cache through all of them. Each strip recomputes
    ``dw``'s halo rows (``norm`` must be per pixel, as LayerNorm or eval BatchNorm are;
    ``fc1``/``fc2`` 1x1), so the values equal the whole-map path up to rounding (tested).

    Args:
        x: ``(B, C, H, W)``.
        norm, fc1, fc2: per-pixel modules (norm, 1x1 convs).
        dw: the depth-wise conv between them (odd kernel, ``padding = k // 2``).
        gelu_first: GELU after ``fc1`` as well (HyLiSANet conv block).

    Returns:
        ``(B, C, H, W)``.
    """
    b, _, h, w = x.shape
    hidden = dw.in_channels
    pad = dw.padding[0]
    budget = _ROW_STRIP_BYTES * torch.get_num_threads()  # per-thread L2 share, as the chunks
    rows = max(1, budget // (b * hidden * w * x.element_size()))
    out = torch.empty_like(x)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        a0, a1 = max(0, r0 - pad), min(h, r1 + pad)  # halo rows dw reads (zeros past the map)
        t = fc1(norm(x[:, :, a0:a1]))
        if gelu_first:
            t = F.gelu(t)
        t = F.conv2d(t, dw.weight, dw.bias, 1, dw.padding, 1, dw.groups)[:, :, r0 - a0:r1 - a0]
        out[:, :, r0:r1] = fc2(F.gelu(t))
    return out.add_(x)


class DwConvMlp(nn.Module):
    """1x1 -> (depth-wise 3x3) -> GELU -> 1x1 (the conv-MLP of PVTv2; plain MLP without dw)."""

    def __init__(self, dim: int, hidden_dim: int, depthwise: bool = True):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden_dim, 1)
        self.dw = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim) \
            if depthwise else nn.Identity()
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden_dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.dw(self.fc1(x))))


class LiSABlock(nn.Module):
    """[conv position embedding] -> LN, LiSA, residual -> LN, (conv-)MLP, residual."""

    def __init__(self, dim: int, num_heads: int, grid_size: Tuple[int, int],
                 mlp_ratio: float = 4.0, num_patterns: int = 8, drop_path: float = 0.0,
                 conv_pos: bool = True, conv_mlp: bool = True, eps: float = 1e-6):
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim) if conv_pos else None
        self.norm1 = LayerNorm2d(dim)
        self.attn = LiSA(dim, num_heads, num_patterns, grid_size, eps)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = LayerNorm2d(dim)
        self.mlp = DwConvMlp(dim, int(dim * mlp_ratio), depthwise=conv_mlp)
        self.mlp_strips = conv_mlp  # the fast form runs the conv-MLP in row strips
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pos_embed is not None:
            x = x + self.pos_embed(x)
        x = x + self.drop_path1(self.attn(self.norm1(x)))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


def _inference(module: nn.Module) -> bool:
    """Eval mode without autograd: where the fast forms' in-place and strip forms apply."""
    return not (module.training or torch.is_grad_enabled())


class LiSABlockFast(LiSABlock):
    """Fast form of :class:`LiSABlock` (eval, no autograd): residuals added in place into the
    fresh branch outputs (same sums) and the conv-MLP in row strips
    (:func:`residual_mlp_rows`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        refuse_capture(self, x)
        if not _inference(self):
            return super().forward(x)
        if self.pos_embed is not None:
            x = self.pos_embed(x).add_(x)
        x = self.attn(self.norm1(x)).add_(x)
        m = self.mlp
        if self.mlp_strips:
            return residual_mlp_rows(x, self.norm2, m.fc1, m.dw, m.fc2, gelu_first=False)
        return m(self.norm2(x)).add_(x)


# BatchNorm *before* the conv: torch.nn.utils.fusion folds a BN that follows a conv only
@torch.no_grad()
def _fold_bn_into_conv1x1(bn: nn.BatchNorm2d, conv: nn.Conv2d) -> None:
    """In place: ``conv(bn(x))`` becomes ``conv'(x)`` (exact for a 1x1, ungrouped conv)."""
    scale = bn.weight / (bn.running_var + bn.eps).sqrt()
    shift = bn.bias - bn.running_mean * scale
    w = conv.weight[:, :, 0, 0]
    bias = conv.bias if conv.bias is not None else torch.zeros_like(w[:, 0])
    conv.bias = nn.Parameter(bias + w @ shift)
    conv.weight.mul_(scale[None, :, None, None])


class ConvBlock(nn.Module):
    """HyLiSANet conv block (Fig. 5): BN, pw (C -> eC), GELU, dw, GELU, pw (eC -> C); residual."""

    def __init__(self, dim: int, expansion: float = 6.0, kernel_size: int = 3,
                 drop_path: float = 0.0):
        super().__init__()
        hidden = int(dim * expansion)
        # a module call before norm (the block input is an add or a LayerNorm2d permute in
        # torch.fx graphs): mmengine's efficient_conv_bn_eval looks up the module feeding
        # every BatchNorm of the graph
        self.norm_in = nn.Identity()
        self.norm = nn.BatchNorm2d(dim)
        self.pw1 = nn.Conv2d(dim, hidden, 1)
        self.act1 = nn.GELU()
        self.dw = nn.Conv2d(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden)
        self.act2 = nn.GELU()
        self.pw2 = nn.Conv2d(hidden, dim, 1)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw2(self.act2(self.dw(self.act1(self.pw1(self.norm(self.norm_in(x)))))))
        return x + self.drop_path(y)

    @torch.no_grad()
    def fuse(self) -> "ConvBlock":
        """Fold the BatchNorm into the 1x1 conv after it (call in eval mode); returns self."""
        if isinstance(self.norm, nn.BatchNorm2d):
            _fold_bn_into_conv1x1(self.norm, self.pw1)
            self.norm = nn.Identity()
        return self


class ConvBlockFast(ConvBlock):
    """Fast form of :class:`ConvBlock` (eval, no autograd): row strips
    (:func:`residual_mlp_rows`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        refuse_capture(self, x)
        if not _inference(self):
            return super().forward(x)
        return residual_mlp_rows(x, self.norm, self.pw1, self.dw, self.pw2, gelu_first=True)


register_forms(LiSABlock, fast=LiSABlockFast)
register_forms(ConvBlock, fast=ConvBlockFast)


class OverlapPatchEmbed(nn.Module):
    """Strided conv with ``kernel_size > stride`` (padding ``k // 2``), then LayerNorm."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2)
        self.norm = LayerNorm2d(out_chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))


class PatchEmbedAbs(nn.Module):
    """Non-overlapping patches (input zero-padded to a multiple of the patch) + absolute PE."""

    def __init__(self, in_chs: int, dim: int, patch_size: int, grid_size: Tuple[int, int]):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chs, dim, patch_size, patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, *grid_size))
        trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        x = self.proj(F.pad(x, (0, -x.shape[-1] % p, 0, -x.shape[-2] % p)))
        return add_pos_embed(x, self.pos_embed)


class PatchEmbedAbsExport(PatchEmbedAbs):
    """Export form of :class:`PatchEmbedAbs`: the position embedding resized with
    interpolation matrices (:func:`~lsdense.models.layers.resize_hw_matrix`; CoreML has no
    bicubic resize)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        x = self.proj(F.pad(x, (0, -x.shape[-1] % p, 0, -x.shape[-2] % p)))
        return x + resize_hw_matrix(self.pos_embed, (x.shape[-2], x.shape[-1]))


register_forms(PatchEmbedAbs, export=PatchEmbedAbsExport)


@torch.fx.wrap  # leaf call in torch.fx graphs (its size branch runs on real tensors)
def add_pos_embed(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """``x + pos``, the position embedding resized (bicubic) when the grids differ."""
    if pos.shape[-2:] != x.shape[-2:]:
        pos = resize_hw(pos, (x.shape[-2], x.shape[-1]))
    return x + pos


class LiSAStage(nn.Module):
    """[Overlapping patch embedding, stride 2] -> blocks -> LayerNorm.

    Args:
        in_dim: input channels (of the previous stage).
        dim: channels of this stage.
        depth: number of blocks.
        block_type: ``'lisa'`` or ``'conv'`` (HyLiSANet's early stages).
        num_heads: LiSA heads (unused by conv blocks).
        grid_size: token grid of the training resolution (LiSA kernel size).
        downsample: start with a stride-2 overlapping patch embedding.
        drop_path: per-block stochastic depth rates.
        conv_expansion, conv_kernel: conv block hidden width (x dim) and dw kernel.
        conv_pos, conv_mlp: LiSA block options (off for LiSANet-I).
    """

    def __init__(self, in_dim: int, dim: int, depth: int, block_type: str = "lisa",
                 num_heads: Optional[int] = None, grid_size: Tuple[int, int] = (14, 14),
                 mlp_ratio: float = 4.0, num_patterns: int = 8,
                 downsample: bool = True, drop_path: Sequence[float] = (),
                 conv_expansion: float = 6.0, conv_kernel: int = 3, conv_pos: bool = True,
                 conv_mlp: bool = True, eps: float = 1e-6):
        super().__init__()
        if block_type not in ("lisa", "conv"):
            raise ValueError(f"LiSAStage: block_type must be 'lisa' or 'conv', got {block_type!r}.")
        drop_path = list(drop_path) or [0.0] * depth
        self.downsample = OverlapPatchEmbed(in_dim, dim, 3, 2) if downsample else nn.Identity()
        if block_type == "lisa":
            blocks = [LiSABlock(dim, num_heads, grid_size, mlp_ratio, num_patterns, dp,
                                conv_pos, conv_mlp, eps) for dp in drop_path]
        else:
            blocks = [ConvBlock(dim, conv_expansion, conv_kernel, dp) for dp in drop_path]
        self.blocks = nn.Sequential(*blocks)
        self.norm = LayerNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.blocks(self.downsample(x)))

    @torch.jit.ignore
    def forward_checkpointed(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` with each block recomputed in backward (timm's ``checkpoint_seq``;
        the model's ``set_grad_checkpointing`` / mm ``with_cp``)."""
        return self.norm(checkpoint_seq(self.blocks, self.downsample(x)))


# --- models ------------------------------------------------------------------------

def _init_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class _LiSAHeadMixin(DenseBackboneMixin):
    """Classifier head, parameter groups and checkpoint adaptation of both model classes."""

    def _build_head(self, num_classes: int, global_pool: str, drop_rate: float) -> None:
        self.num_classes = 0 if self.dense else num_classes
        self.global_pool = check_global_pool(type(self).__name__, global_pool)
        self.head_hidden_size = self.num_features
        self.head_drop = nn.Dropout(drop_rate)
        self.head = self._make_classifier(self.num_classes)

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        """Parameters exempt from weight decay: the LiSA kernels R1/R2 (relative position
        encodings) and LiSANet-I's absolute position embedding (as timm's ViT)."""
        return {n for n, _ in self.named_parameters()
                if n.endswith(_KERNEL_SUFFIXES) or n.endswith("pos_embed")}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        """Parameter groups for layer-wise learning-rate decay (timm API)."""
        return dict(stem=r"^stem",
                    blocks=r"^stages\.(\d+)" if coarse else [
                        (r"^stages\.(\d+)\.downsample", (0,)),
                        (r"^stages\.(\d+)\.blocks\.(\d+)", None),
                        (r"^stages\.(\d+)\.norm", (99999,))])

    def adapt_state_dict(self, state_dict: Dict[str, torch.Tensor],
                         own: Dict[str, torch.Tensor]):
        """Fit a state dict of another resolution to this model (runs at every load).

        Resizes LiSA kernels (centred bicubic, :func:`resize_kernel`) and the absolute
        position embedding (bicubic, as timm's ViT) stored at another grid size.

        Returns:
            ``(state_dict, dropped_keys, resized_keys)``.
        """
        out, resized = {}, []
        for key, value in state_dict.items():
            target = own.get(key)
            if target is not None and value.shape != target.shape and value.dim() >= 2 \
                    and value.shape[:-2] == target.shape[:-2]:
                if key.endswith(_KERNEL_SUFFIXES):
                    value = resize_kernel(value.float(), tuple(target.shape[-2:])).to(value.dtype)
                    resized.append(key)
                elif key.endswith("pos_embed"):
                    value = resize_hw(value.float(), tuple(target.shape[-2:])).to(value.dtype)
                    resized.append(key)
            out[key] = value
        return out, [], resized


class LiSANet(_LiSAHeadMixin, nn.Module):
    """Hierarchical LiSANet / HyLiSANet: four stages at strides 4, 8, 16, 32.

    Args:
        embed_dims: channels per stage.
        depths: blocks per stage.
        num_heads: LiSA heads per stage (``None`` for conv stages).
        block_types: ``'lisa'`` or ``'conv'`` per stage.
        mlp_ratios: MLP expansion per stage.
        num_patterns: ``D``, structural patterns of every LiSA layer.
        conv_expansion: hidden width of the conv blocks, in multiples of the stage width.
        conv_kernel: depth-wise kernel of the conv blocks.
        num_classes: classifier outputs (ignored when ``dense``).
        in_chans: input channels.
        dense: build a backbone for dense prediction (no classifier; ``forward``
            returns the ``out_indices`` maps).
        out_indices: levels ``forward`` returns in dense mode (default all four).
        frozen_stages: -1 none, 0 the stem, k the stem and stages 1..k.
        norm_eval: keep BatchNorm layers (HyLiSANet conv blocks) in eval mode.
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth, linearly increasing over all blocks.
        img_size: training resolution; sets the grid the LiSA kernels are stored at
            (any input size works; kernels are resized for other grids).
        global_pool: ``'avg'`` (or timm's ``'max'``, ``'avgmax'``, ``'fast*'``) or ``''``
            (no pooling: with ``num_classes=0`` the model returns the (B, C, H, W) map).
        eps: q/k L2-normalisation epsilon.
        device, dtype: where and in which precision to create the tensors (timm's
            factory arguments).
    """

    @factory_kwargs
    def __init__(self, embed_dims: Sequence[int] = (64, 128, 320, 384),
                 depths: Sequence[int] = (2, 4, 12, 4),
                 num_heads: Sequence[Optional[int]] = (4, 8, 20, 24),
                 block_types: Sequence[str] = ("lisa", "lisa", "lisa", "lisa"),
                 mlp_ratios: Sequence[float] = (4, 4, 3, 3), num_patterns: int = 8,
                 conv_expansion: float = 6.0, conv_kernel: int = 3, num_classes: int = 1000,
                 in_chans: int = 3,
                 dense: bool = False, out_indices: Optional[Sequence[int]] = None,
                 frozen_stages: int = -1, norm_eval: bool = False, drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, img_size: Union[int, Tuple[int, int]] = 224,
                 global_pool: str = "avg", eps: float = 1e-6):
        super().__init__()
        per_stage = dict(embed_dims=embed_dims, depths=depths, num_heads=num_heads,
                         block_types=block_types, mlp_ratios=mlp_ratios)
        wrong = {k: len(v) for k, v in per_stage.items() if len(v) != 4}
        if wrong:
            raise ValueError(f"LiSANet has four stages: give one entry per stage for each of "
                             f"{', '.join(per_stage)} (got lengths {wrong}).")
        self.dense = dense
        self.in_chans = in_chans
        self.num_features = embed_dims[-1]
        img_h, img_w = to_2tuple(img_size)
        self.stem = OverlapPatchEmbed(in_chans, embed_dims[0], 7, 4)
        dpr = drop_path_rates(depths, drop_path_rate)
        self.feature_info = self._level_info(embed_dims)
        stages = []
        for i, info in enumerate(self.feature_info):
            stride = info["reduction"]
            stages.append(LiSAStage(
                embed_dims[i - 1] if i else embed_dims[0], embed_dims[i], depths[i], block_types[i],
                num_heads[i], (-(-img_h // stride), -(-img_w // stride)), mlp_ratios[i],
                num_patterns, downsample=i > 0, drop_path=dpr[i], conv_expansion=conv_expansion,
                conv_kernel=conv_kernel, eps=eps))
        self.stages = nn.Sequential(*stages)
        self._build_head(num_classes, global_pool, drop_rate)
        self.apply(_init_weights)
        self._setup_dense(out_indices, frozen_stages, norm_eval)

    @staticmethod
    def _level_info(embed_dims: Sequence[int], **_) -> List[dict]:
        return [dict(num_chs=c, reduction=4 * 2 ** i, module=f"stages.{i}")
                for i, c in enumerate(embed_dims)]

    def _freeze_units(self) -> List[nn.Module]:
        return [self.stem, *self.stages]


class LiSANetI(_LiSAHeadMixin, nn.Module):
    """Isotropic LiSANet-I: patch 16, absolute position embedding, one stage of LiSA blocks.

    Its levels are the outputs of its ``depth`` blocks (as timm's isotropic ViTs),
    each passed through the stage's final LayerNorm (timm's
    ``forward_intermediates(norm=True)``), all at stride 16 (the input is
    zero-padded to a multiple of 16); the last level is ``forward_features``. As a
    dense backbone it returns the last level unless ``out_indices`` asks for
    others; ``prune_intermediate_layers`` drops the blocks after the last index.
    Arguments as :class:`LiSANet`, plus ``embed_dim``, ``depth``, ``num_heads``,
    ``patch_size`` and ``mlp_ratio`` of the single stage.
    """

    @factory_kwargs
    def __init__(self, embed_dim: int = 192, depth: int = 12, num_heads: int = 12,
                 num_patterns: int = 16, patch_size: int = 16, mlp_ratio: float = 4.0,
                 num_classes: int = 1000, in_chans: int = 3, dense: bool = False,
                 out_indices: Optional[Sequence[int]] = None, frozen_stages: int = -1,
                 norm_eval: bool = False, drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 img_size: Union[int, Tuple[int, int]] = 224, global_pool: str = "avg",
                 eps: float = 1e-6):
        super().__init__()
        self.dense = dense
        self.in_chans = in_chans
        self.num_features = embed_dim
        img_h, img_w = to_2tuple(img_size)
        grid = (-(-img_h // patch_size), -(-img_w // patch_size))
        self.stem = PatchEmbedAbs(in_chans, embed_dim, patch_size, grid)
        self.stages = nn.Sequential(LiSAStage(
            embed_dim, embed_dim, depth, "lisa", num_heads, grid, mlp_ratio,
            num_patterns, downsample=False, drop_path=drop_path_rates([depth], drop_path_rate)[0],
            conv_pos=False, conv_mlp=False, eps=eps))
        self.feature_info = self._level_info(embed_dim, depth, patch_size)
        self._build_head(num_classes, global_pool, drop_rate)
        self.apply(_init_weights)
        trunc_normal_(self.stem.pos_embed, std=0.02)
        self._setup_dense(self.default_out_indices(depth) if out_indices is None else out_indices,
                          frozen_stages, norm_eval)

    @staticmethod
    def _level_info(embed_dim: int, depth: int, patch_size: int, **_) -> List[dict]:
        return [dict(num_chs=embed_dim, reduction=patch_size, module=f"stages.0.blocks.{i}")
                for i in range(depth)]

    @classmethod
    def default_out_indices(cls, num_levels: int) -> Tuple[int, ...]:
        """The last block only (as a ViT backbone)."""
        return (num_levels - 1,)

    def _freeze_units(self) -> List[nn.Module]:
        return [self.stem, *self.stages]

    def _level_units(self) -> Tuple[nn.Module, List[nn.Module]]:
        return self.stem, list(self.stages[0].blocks)

    def _level_output(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages[0].norm(x)

    def _forward_levels_scripted(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.stem(x)
        levels: List[torch.Tensor] = []
        for block in self.stages[0].blocks:
            x = block(x)
            levels.append(self._level_output(x))
        return levels

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        """Parameter groups for layer-wise learning-rate decay (timm API, per block as ViT)."""
        return dict(stem=r"^stem", blocks=[(r"^stages\.0\.blocks\.(\d+)", None),
                                           (r"^stages\.0\.norm", (99999,))])


# --- configs and entry points ------------------------------------------------------

def _cfg(url: str = "", **kwargs) -> dict:
    return {
        "url": url, "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.9, "interpolation": "bicubic", "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD, "first_conv": "stem.proj", "classifier": "head",
        "paper_ids": "LiSA", **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "lisanet_s": _cfg(),
    "lisanet_b": _cfg(),
    "hylisanet_s": _cfg(),
    "hylisanet_b": _cfg(),
    "lisanet_i": _cfg(pool_size=(14, 14)),
})

_LISA4, _HYBRID = ("lisa",) * 4, ("conv", "conv", "lisa", "lisa")

# Paper Tab. 2 / Tab. A.2; heads of 16 channels; D = 8 (hierarchical), 16 (isotropic).
MODEL_ARGS: Dict[str, dict] = {
    "lisanet_s": dict(embed_dims=(64, 128, 320, 384), depths=(2, 4, 12, 4),
                      num_heads=(4, 8, 20, 24), block_types=_LISA4),
    "lisanet_b": dict(embed_dims=(96, 192, 384, 576), depths=(4, 8, 18, 3),
                      num_heads=(6, 12, 24, 36), block_types=_LISA4),
    "hylisanet_s": dict(embed_dims=(64, 128, 320, 384), depths=(3, 6, 12, 4),
                        num_heads=(None, None, 20, 24), block_types=_HYBRID),
    "hylisanet_b": dict(embed_dims=(96, 192, 384, 576), depths=(3, 12, 18, 3),
                        num_heads=(None, None, 24, 36), block_types=_HYBRID),
    "lisanet_i": dict(embed_dim=192, depth=12, num_heads=12, num_patterns=16, patch_size=16),
}


def _create_lisanet(variant: str, pretrained: bool = False, **kwargs) -> nn.Module:
    if variant == "lisanet_i":  # int: the last 3 blocks (as ViT)
        return create_timm_model(LiSANetI, variant, pretrained, MODEL_ARGS[variant], 3, **kwargs)
    return create_timm_model(LiSANet, variant, pretrained, MODEL_ARGS[variant], (0, 1, 2, 3),
                             **kwargs)


@register_model
def lisanet_s(pretrained: bool = False, **kwargs) -> LiSANet:
    """LiSANet-S (paper: 25 M parameters, 3.9 GFLOPs at 224)."""
    return _create_lisanet("lisanet_s", pretrained, **kwargs)


@register_model
def lisanet_b(pretrained: bool = False, **kwargs) -> LiSANet:
    """LiSANet-B (paper: 51 M parameters, 10.4 GFLOPs at 224)."""
    return _create_lisanet("lisanet_b", pretrained, **kwargs)


@register_model
def hylisanet_s(pretrained: bool = False, **kwargs) -> LiSANet:
    """HyLiSANet-S (paper: 24 M parameters, 4.5 GFLOPs at 224)."""
    return _create_lisanet("hylisanet_s", pretrained, **kwargs)


@register_model
def hylisanet_b(pretrained: bool = False, **kwargs) -> LiSANet:
    """HyLiSANet-B (paper: 50 M parameters, 11.7 GFLOPs at 224)."""
    return _create_lisanet("hylisanet_b", pretrained, **kwargs)


@register_model
def lisanet_i(pretrained: bool = False, **kwargs) -> LiSANetI:
    """LiSANet-I (paper: 6.36 M parameters, 1.21 GFLOPs at 224)."""
    return _create_lisanet("lisanet_i", pretrained, **kwargs)


register_variants("lisanet", LiSANet, {k: MODEL_ARGS[k] for k in ("lisanet_s", "lisanet_b")},
                  dense_args={})
register_variants("lisanet", LiSANetI, {"lisanet_i": MODEL_ARGS["lisanet_i"]}, dense_args={})
register_variants("hylisanet", LiSANet, {k: MODEL_ARGS[k] for k in ("hylisanet_s", "hylisanet_b")},
                  dense_args={})
