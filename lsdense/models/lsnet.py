"""LSNet: "See Large, Focus Small" (Wang, Chen, Lin, Han, Ding; CVPR 2025).

LS convolution = large-kernel perception (LKP: pw -> dw 7x7 -> pw -> per-pixel
3x3 kernels) + small-kernel aggregation (SKA: a dynamic grouped 3x3 conv, see
``ska.py``). Stages 1-3 alternate RepVGG depth-wise + SE blocks with LS-conv
blocks; stage 4 replaces LS conv by multi-head self-attention with a learned
relative-position bias.

Module and parameter names follow the official implementation so that its
ImageNet and dense-prediction checkpoints load unchanged; the spec
(``shared/specs/lsnet.md``) lists the facts this file reproduces, and the test
suite checks the outputs against golden outputs of the official code.

Dense backbone: the official detection/segmentation backbone is built for a
14x14 stage-4 grid and, at every forward, resizes the (heads, N0, N0) bias
*matrix* bicubically to the actual (heads, N, N); ``attn_bias_mode='matrix'``
(default) reproduces that, cached per input size in eval mode.
``attn_bias_mode='table'`` instead resizes the (|dy|, |dx|) offset table to the
actual grid and indexes it: the better-founded alternative.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, SqueezeExcite, resize_rel_pos_bias_table_levit, trunc_normal_
from timm.models import generate_default_cfgs, register_model

from .factory import create_timm_model
from .forms import register_forms
from .layers import (Conv2d_BN, DenseBackboneMixin, EvalCache, check_global_pool,
                     drop_path_rates, factory_kwargs, resize_hw, resize_hw_matrix)
from .registry import register_variants
from .ska import SKA

__all__ = ["LSNet"]


class BN_Linear(nn.Sequential):
    """BatchNorm1d (``bn``) + Linear (``l``): the official classifier head."""

    def __init__(self, in_features: int, out_features: int, std: float = 0.02, device=None,
                 dtype=None):
        super().__init__()
        self.add_module("bn", nn.BatchNorm1d(in_features, device=device, dtype=dtype))
        self.add_module("l", nn.Linear(in_features, out_features, device=device, dtype=dtype))
        trunc_normal_(self.l.weight, std=std)
        nn.init.constant_(self.l.bias, 0)


class Residual(nn.Module):
    """``x + drop_path(m(x))``; the wrapped module is ``m`` (official name)."""

    def __init__(self, m: nn.Module, drop_path: float = 0.0):
        super().__init__()
        self.m = m
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.m(x))


class FFN(nn.Module):
    """Pointwise feed-forward: Conv2d_BN -> ReLU -> Conv2d_BN (zero-initialised BN)."""

    def __init__(self, ed: int, hidden: int):
        super().__init__()
        self.pw1 = Conv2d_BN(ed, hidden)
        self.act = nn.ReLU()
        self.pw2 = Conv2d_BN(hidden, ed, bn_weight_init=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw2(self.act(self.pw1(x)))


class RepVGGDW(nn.Module):
    """Depth-wise 3x3 + depth-wise 1x1 + identity; ``fuse()`` makes one 3x3 conv."""

    def __init__(self, ed: int):
        super().__init__()
        self.conv = Conv2d_BN(ed, ed, 3, 1, 1, groups=ed)
        self.conv1 = Conv2d_BN(ed, ed, 1, 1, 0, groups=ed)
        self.dim = ed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.conv1(x) + x

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        conv = self.conv.fuse()
        conv1 = self.conv1.fuse()
        identity = torch.zeros_like(conv1.weight)
        identity[:, :, 0, 0] = 1
        conv.weight += F.pad(conv1.weight + identity, (1, 1, 1, 1))
        conv.bias += conv1.bias
        return conv


class LKP(nn.Module):
    """Large-kernel perception: per-pixel 3x3 kernels for SKA from a 7x7 context.

    Output ``(B, 9G, H, W)`` with ``G = dim / groups`` (official: viewed as
    ``(B, G, 9, H, W)``; :class:`~lsdense.models.ska.SKA` does that view).
    """

    def __init__(self, dim: int, lks: int = 7, sks: int = 3, groups: int = 8):
        super().__init__()
        self.cv1 = Conv2d_BN(dim, dim // 2)
        self.act = nn.ReLU()
        self.cv2 = Conv2d_BN(dim // 2, dim // 2, lks, padding=(lks - 1) // 2, groups=dim // 2)
        self.cv3 = Conv2d_BN(dim // 2, dim // 2)
        self.cv4 = nn.Conv2d(dim // 2, sks ** 2 * dim // groups, kernel_size=1)
        self.norm = nn.GroupNorm(num_groups=dim // groups, num_channels=sks ** 2 * dim // groups)
        self.sks = sks
        self.groups = groups
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.cv3(self.cv2(self.act(self.cv1(x)))))
        return self.norm(self.cv4(x))  # (B, 9G, H, W): group g's tap k at channel 9g + k


class LSConv(nn.Module):
    """LS convolution: ``bn(ska(x, lkp(x))) + x`` (paper Sec. "LS convolution")."""

    def __init__(self, dim: int, ska_impl: str = "auto"):
        super().__init__()
        self.lkp = LKP(dim, lks=7, sks=3, groups=8)
        self.ska = SKA(ska_impl)
        # a module call between SKA (a function in torch.fx graphs) and bn: mmengine's
        # efficient_conv_bn_eval looks up the module feeding every BatchNorm of the graph
        self.ska_out = nn.Identity()
        self.bn = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.ska_out(self.ska(x, self.lkp(x)))) + x


def _offset_index(h: int, w: int, device: Optional[torch.device] = None) -> torch.Tensor:
    """(h*w, h*w) index of the |dy|, |dx| offset between every token pair (row-major table)."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device),
                            indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    return (ys[:, None] - ys[None]).abs() * w + (xs[:, None] - xs[None]).abs()


@torch.fx.wrap  # a leaf call in torch.fx graphs: its size branches run on real tensors
def attention_bias(biases: torch.Tensor, idxs: torch.Tensor, r: int, h: int, w: int,
                   table_mode: bool, matrix_resize: bool = False) -> torch.Tensor:
    """(heads, h*w, h*w) relative-position bias for an h x w grid (module docstring, modes).

    Args:
        biases: (heads, r*r) offset table of the r x r grid it was trained at.
        idxs: (r*r, r*r) offset index of that grid.
        r: that grid's side.
        h, w: the actual grid.
        table_mode: resize the offset table (``'table'``) instead of the bias matrix.
        matrix_resize: resize with interpolation matrices (:func:`resize_hw_matrix`, the
            export form: CoreML has no bicubic resize) instead of ``F.interpolate``.
    """
    n = h * w
    if table_mode and (h != r or w != r):
        table = biases.view(-1, r, r)
        table = resize_hw_matrix(table, (h, w)) if matrix_resize else resize_hw(table, (h, w))
        table = table.flatten(1)
        return table[:, _offset_index(h, w, table.device)]
    bias = biases[:, idxs]
    if n != r * r:  # official dense backbone: resize the bias matrix itself (bicubic)
        bias = resize_hw_matrix(bias, (n, n)) if matrix_resize else resize_hw(bias, (n, n))
    return bias


class Attention(nn.Module):
    """Stage-4 multi-head self-attention with a learned relative-position bias.

    Queries get a depth-wise 3x3 conv; no softmax scaling beyond ``key_dim**-0.5``.
    ``attention_biases`` is the official (heads, resolution**2) offset table; for
    other grid sizes the bias is resized (see module docstring).
    """

    def __init__(self, dim: int, key_dim: int, num_heads: int = 8, attn_ratio: float = 4,
                 resolution: int = 14, attn_bias_mode: str = "matrix"):
        super().__init__()
        if attn_bias_mode not in ("matrix", "table"):
            raise ValueError(f"attn_bias_mode must be 'matrix' or 'table', got {attn_bias_mode!r}")
        self.num_heads = num_heads
        self.scale = key_dim ** -0.5
        self.key_dim = key_dim
        self.nh_kd = key_dim * num_heads
        self.d = int(attn_ratio * key_dim)
        self.dh = self.d * num_heads
        self.resolution = resolution
        self.attn_bias_mode = attn_bias_mode
        self.qkv = Conv2d_BN(dim, self.dh + self.nh_kd * 2)
        self.proj = nn.Sequential(nn.ReLU(), Conv2d_BN(self.dh, dim, bn_weight_init=0))
        self.dw = Conv2d_BN(self.nh_kd, self.nh_kd, 3, 1, 1, groups=self.nh_kd)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, resolution * resolution))
        self.register_buffer("attention_bias_idxs", _offset_index(resolution, resolution),
                             persistent=False)
        # one grid per layer: a dense model sees one input size at a time, and a bias is
        # (heads, N, N), large for big grids
        self._bias_cache = EvalCache(maxsize=1)

    def train(self, mode: bool = True):
        self._bias_cache.clear()
        return super().train(mode)

    def _compute_bias(self, h: int, w: int) -> torch.Tensor:
        return attention_bias(self.attention_biases, self.attention_bias_idxs, self.resolution,
                              h, w, self.attn_bias_mode == "table")

    def _bias(self, h: int, w: int) -> torch.Tensor:
        """(heads, h*w, h*w) bias for an h x w grid (cached in eval mode, see EvalCache)."""
        if torch.jit.is_scripting():
            return self._compute_bias(h, w)
        else:
            params = (self.attention_biases,)
            # a traced graph computes it at every call
            if isinstance(h, torch.fx.Proxy) or not EvalCache.active(self, params):
                return self._compute_bias(h, w)
            return self._bias_cache.get((h, w), params, self._compute_bias, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        n = h * w
        q, k, v = self.qkv(x).split([self.nh_kd, self.nh_kd, self.dh], dim=1)
        q = self.dw(q)
        q = q.view(b, self.num_heads, -1, n)
        k = k.view(b, self.num_heads, -1, n)
        v = v.view(b, self.num_heads, -1, n)
        attn = (q.transpose(-2, -1) @ k) * self.scale + self._bias(h, w)
        attn = attn.softmax(dim=-1)
        x = (v @ attn.transpose(-2, -1)).reshape(b, -1, h, w)
        return self.proj(x)


class AttentionExport(Attention):
    """Export form of :class:`Attention`: the bias resized with interpolation matrices."""

    def _compute_bias(self, h: int, w: int) -> torch.Tensor:
        return attention_bias(self.attention_biases, self.attention_bias_idxs, self.resolution,
                              h, w, self.attn_bias_mode == "table", matrix_resize=True)


register_forms(Attention, export=AttentionExport)


class Block(nn.Module):
    """LSNet block: ``ffn(se(mixer(x)))``; even index RepVGGDW + SE, odd LS conv / attention."""

    def __init__(self, ed: int, kd: int, nh: int, ar: float, resolution: int, stage: int,
                 depth: int, drop_path: float = 0.0, ska_impl: str = "auto",
                 attn_bias_mode: str = "matrix"):
        super().__init__()
        if depth % 2 == 0:
            self.mixer = RepVGGDW(ed)
            self.se = SqueezeExcite(ed, 0.25)
        else:
            self.se = nn.Identity()
            if stage == 3:
                self.mixer = Residual(Attention(ed, kd, nh, ar, resolution, attn_bias_mode))
            else:
                self.mixer = LSConv(ed, ska_impl)
        self.ffn = Residual(FFN(ed, 2 * ed), drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn(self.se(self.mixer(x)))


class LSNet(DenseBackboneMixin, nn.Module):
    """LSNet for classification (``dense=False``) or as a dense backbone (``dense=True``).

    Args:
        embed_dim: channels of the four stages.
        depth: blocks per stage (stage 1 may be empty: LSNet-T).
        num_heads: heads per stage (only stage 4 uses attention).
        key_dim: attention key width per head.
        img_size: input size the attention bias table is built for
            (224 -> 4x4 stage-4 grid; the dense backbone uses 896 -> 14x14).
        num_classes: classifier classes (0: no classifier); ignored when dense.
        distillation: add the ``head_dist`` classifier of the distilled models.
        in_chans: input channels.
        dense: return the stage maps (strides 8, 16, 32, 64) instead of logits.
        out_indices, frozen_stages, norm_eval: backbone contract (see layers.py).
        drop_rate: dropout before the classifier (timm's ``drop_rate``; the official
            model has none: 0).
        drop_path_rate: stochastic depth on the FFN residuals (0 in the paper).
        ska_impl: 'auto' | 'fast' | 'reference' SKA implementation.
        attn_bias_mode: 'matrix' (official) or 'table' bias resizing.
        global_pool: 'avg' (or timm's 'max', 'avgmax', 'fast*'), or '' (no pooling: with
            ``num_classes=0`` the model returns the (B, C, H, W) stage-4 map).
        device, dtype: where and in which precision to create the tensors (timm's
            factory arguments).
    """

    @factory_kwargs
    def __init__(self, embed_dim: Sequence[int] = (64, 128, 256, 384),
                 depth: Sequence[int] = (0, 2, 8, 10), num_heads: Sequence[int] = (3, 3, 3, 4),
                 key_dim: Sequence[int] = (16, 16, 16, 16), img_size: int = 224,
                 num_classes: int = 1000, distillation: bool = False, in_chans: int = 3,
                 dense: bool = False, out_indices: Sequence[int] | None = None,
                 frozen_stages: int = -1, norm_eval: bool = False, drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, ska_impl: str = "auto",
                 attn_bias_mode: str = "matrix",
                 global_pool: str = "avg", **kwargs):
        super().__init__()
        if kwargs:
            raise TypeError(f"LSNet got unexpected arguments: {sorted(kwargs)}")
        self.in_chans = in_chans
        self.dense = dense
        self.num_classes = 0 if dense else num_classes
        self.num_features = self.head_hidden_size = embed_dim[-1]
        self.global_pool = check_global_pool("LSNet", global_pool)
        self.distillation = distillation and not dense
        e0 = embed_dim[0]
        self.patch_embed = nn.Sequential(
            Conv2d_BN(in_chans, e0 // 4, 3, 2, 1), nn.ReLU(),
            Conv2d_BN(e0 // 4, e0 // 2, 3, 2, 1), nn.ReLU(),
            Conv2d_BN(e0 // 2, e0, 3, 2, 1))
        resolution = img_size // 8
        dpr = drop_path_rates(depth, drop_path_rate)
        stages = []
        for i, (ed, kd, d, nh, rates) in enumerate(zip(embed_dim, key_dim, depth, num_heads, dpr)):
            stage = nn.Sequential()
            if i > 0:  # downsample: dw 3x3 stride 2, then pw to the new width
                stage.append(Conv2d_BN(embed_dim[i - 1], embed_dim[i - 1], 3, 2, 1,
                                       groups=embed_dim[i - 1]))
                stage.append(Conv2d_BN(embed_dim[i - 1], ed, 1))
                resolution = (resolution - 1) // 2 + 1
            ar = ed / (kd * nh)
            for j in range(d):
                stage.append(Block(ed, kd, nh, ar, resolution, i, j, rates[j], ska_impl,
                                   attn_bias_mode))
            stages.append(stage)
        self.blocks1, self.blocks2, self.blocks3, self.blocks4 = stages
        self.feature_info = self._level_info(embed_dim, depth)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = self.head_dist = None
        self.reset_classifier(self.num_classes)
        self._setup_dense(out_indices, frozen_stages, norm_eval)

    # --- backbone contract --------------------------------------------------------
    @staticmethod
    def _level_info(embed_dim: Sequence[int], depth: Sequence[int], **_) -> List[dict]:
        info = [dict(num_chs=c, reduction=8 * 2 ** i, module=f"blocks{i + 1}")
                for i, c in enumerate(embed_dim)]
        if not depth[0]:  # LSNet-T: level 1 is the stem's output (a graph node for fx)
            info[0]["module"] = "patch_embed"
        return info

    def _freeze_units(self) -> List[nn.Module]:
        return [self.patch_embed, self.blocks1, self.blocks2, self.blocks3, self.blocks4]

    def _forward_levels_scripted(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.patch_embed(x)
        x1 = self.blocks1(x)
        x2 = self.blocks2(x1)
        x3 = self.blocks3(x2)
        return [x1, x2, x3, self.blocks4(x3)]

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        """Parameters exempt from weight decay: the attention biases (as timm's LeViT)."""
        return {n for n, _ in self.named_parameters() if "attention_biases" in n}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        """Parameter groups for layer-wise learning-rate decay (timm API)."""
        return dict(stem=r"^patch_embed",
                    blocks=r"^blocks(\d+)" if coarse else [(r"^blocks(\d+)\.(\d+)", None)])

    # --- classifier (timm API): BN_Linear, plus head_dist when distilled ------------
    def _new_classifier(self, num_classes: int, device=None, dtype=None) -> nn.Module:
        return BN_Linear(self.num_features, num_classes, device=device, dtype=dtype)

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        super().reset_classifier(num_classes, global_pool)
        self.head_dist = self._make_classifier(num_classes) \
            if self.distillation and num_classes > 0 else None

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pooling, dropout (``head_drop``), then the average of ``head`` and ``head_dist``
        (both, when training)."""
        x = self.head_drop(self._pool(x))
        if pre_logits:
            return x
        head_dist = self.head_dist
        if head_dist is None:
            return self.head(x)
        y, y_dist = self.head(x), head_dist(x)
        if self.training and not torch.jit.is_scripting():
            return y, y_dist
        return (y + y_dist) / 2

    # --- checkpoints --------------------------------------------------------------
    def adapt_state_dict(self, state_dict: Dict[str, torch.Tensor],
                         own: Dict[str, torch.Tensor]) -> Tuple[dict, List[str], List[str]]:
        """Fit an official / lsdense LSNet state dict to this model.

        Drops ``attention_bias_idxs`` (rebuilt, not stored), resizes attention-bias
        tables of another resolution (:func:`resize_bias_table`) and folds a distilled
        checkpoint's ``head`` + ``head_dist`` into this model's single ``head``
        (exact in eval mode). Runs at every ``load_state_dict``.
        """
        out, dropped, resized = {}, [], []
        for k, v in state_dict.items():
            if k.endswith("attention_bias_idxs"):
                dropped.append(k)
                continue
            if k.endswith("attention_biases") and k in own and v.shape != own[k].shape \
                    and v.dim() == 2 and v.shape[0] == own[k].shape[0]:
                v = resize_bias_table(v, own[k].shape[1])
                resized.append(k)
            out[k] = v
        dist = sorted(k for k in out if k.startswith("head_dist."))
        if dist and "head.l.weight" in own and "head_dist.l.weight" not in own \
                and all(k in out for k in _BN_LINEAR_KEYS):
            heads = {k: out.pop(k) for k in _BN_LINEAR_KEYS}
            out = {k: v for k, v in out.items() if k not in dist}  # e.g. num_batches_tracked
            out.update(_fold_distilled_heads(heads))
            dropped += dist
        return out, dropped, resized


def resize_bias_table(table: torch.Tensor, num_offsets: int) -> torch.Tensor:
    """(heads, r*r) attention-bias table resized to (heads, n), ``n = s*s`` (bicubic).

    The table has EfficientViT's layout, LeViT's transposed:
    ``timm.layers.resize_rel_pos_bias_table_levit`` does the resize (antialias off:
    the official dense backbones resize without it).
    """
    return resize_rel_pos_bias_table_levit(table.T, (num_offsets, table.shape[0]),
                                           antialias=False).T.contiguous()


_BN_LINEAR_KEYS = tuple(f"{h}.{p}" for h in ("head", "head_dist")
                        for p in ("bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
                                  "l.weight", "l.bias"))


def _bn_linear_affine(sd: Dict[str, torch.Tensor], prefix: str):
    """The eval-mode affine map ``l(bn(x)) = W x + b`` of a BN_Linear state dict."""
    scale = sd[prefix + "bn.weight"] / (sd[prefix + "bn.running_var"] + 1e-5).sqrt()
    shift = sd[prefix + "bn.bias"] - sd[prefix + "bn.running_mean"] * scale
    w = sd[prefix + "l.weight"] * scale[None]
    return w, sd[prefix + "l.bias"] + sd[prefix + "l.weight"] @ shift


def _fold_distilled_heads(heads: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Average ``head`` and ``head_dist`` into one BN_Linear (identity BN), exact in eval."""
    w1, b1 = _bn_linear_affine(heads, "head.")
    w2, b2 = _bn_linear_affine(heads, "head_dist.")
    c = w1.shape[1]
    return {"head.bn.weight": torch.ones(c), "head.bn.bias": torch.zeros(c),
            "head.bn.running_mean": torch.zeros(c), "head.bn.running_var": torch.full((c,), 1 - 1e-5),
            "head.l.weight": (w1 + w2) / 2, "head.l.bias": (b1 + b2) / 2}


def _cfg(**kwargs) -> dict:
    return dict(num_classes=1000, input_size=(3, 224, 224), pool_size=(4, 4), crop_pct=0.875,
                interpolation="bicubic", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                first_conv="patch_embed.0.c", classifier="head.l", license="mit",
                paper_ids="arXiv:2503.23135", **kwargs)


_HF = "https://huggingface.co/jameslahm/lsnet/resolve/main/"
default_cfgs = generate_default_cfgs({
    f"lsnet_{v}.{tag}": _cfg(hf_hub_id=f"jameslahm/lsnet_{v}{suffix}", url=f"{_HF}lsnet_{v}{suffix}.pth")
    for v in ("t", "s", "b") for tag, suffix in (("in1k_distill", "_distill"), ("in1k", ""))
})

# Variants are data: the official numbers (spec table).
MODEL_ARGS = {
    "lsnet_t": dict(embed_dim=(64, 128, 256, 384), depth=(0, 2, 8, 10), num_heads=(3, 3, 3, 4)),
    "lsnet_s": dict(embed_dim=(96, 192, 320, 448), depth=(1, 2, 8, 10), num_heads=(3, 3, 3, 4)),
    "lsnet_b": dict(embed_dim=(128, 256, 384, 512), depth=(4, 6, 8, 10), num_heads=(3, 3, 3, 4)),
}
# The official dense backbone is built for a 14x14 stage-4 grid (896 input).
DENSE_ARGS = dict(img_size=896)


def _create_lsnet(variant: str, pretrained: bool = False, **kwargs) -> LSNet:
    return create_timm_model(LSNet, variant, pretrained, MODEL_ARGS[variant], (0, 1, 2, 3),
                             **kwargs)


@register_model
def lsnet_t(pretrained: bool = False, **kwargs) -> LSNet:
    return _create_lsnet("lsnet_t", pretrained, **kwargs)


@register_model
def lsnet_s(pretrained: bool = False, **kwargs) -> LSNet:
    return _create_lsnet("lsnet_s", pretrained, **kwargs)


@register_model
def lsnet_b(pretrained: bool = False, **kwargs) -> LSNet:
    return _create_lsnet("lsnet_b", pretrained, **kwargs)


register_variants("lsnet", LSNet, MODEL_ARGS, DENSE_ARGS)
