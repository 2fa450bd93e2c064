"""LOLViT: "Lightweight Backbone Networks Only Require Adaptive Lightweight
Self-Attention Mechanisms" (Li, Zheng, Fang, Lan, Liang, Zhang, Si; arXiv 2508.01385).

A GhostNet-based hybrid with five levels (strides 2, 4, 8, 16, 32). Levels 1-2
are pure CNN (Ghost bottlenecks); levels 3-5 each end in a LOLViTBlock, a
MobileViT-like block whose transformer uses Fast Window Attention (FWA, Sec. 4):

    out = DReLu(Q FWA_K^T / sqrt(d)) FWA_V                      (Eq. 2)
    DReLu(x) = ReLU(x) / ((DP + eps) * L)                          (Eq. 3)

where FWA_K, FWA_V = Split(Conv(FAWA(Token))) come from a short key sequence
that FAWA (Eq. 4) builds by summing the row-major token sequence over its rows
(chunks of length F = map width) and then over groups of adjacent columns, so
the number of keys follows the input width (no preset pooled size). Layers
2..L of a block reuse layer 1's FAWA tokens (key-sequence cache, Eq. 5).

No official code exists. The design follows the paper and our spec
(``shared/specs/lolvit.md``, authoritative); the CNN part reproduces every row
of the paper's parameter tables 16/17 exactly. Decisions the paper leaves open:

* Ghost bottleneck: timm GhostNet shape (expansion 2, SE with ratio 0.25 on the
  expanded width, stride-2 depth-wise 3x3), with Ultralytics' ``GhostConv`` as
  ghost module (cheap depth-wise **5x5**); the only shape that matches tables
  16/17. Activation: **SiLU** (the Ultralytics ``Conv`` default the paper's
  code base, ultralytics 8.1.45, uses); the SE keeps GhostNet's ReLU and
  hard-sigmoid gate.
* LOLViTBlock: depth-wise 3x3 ConvBNAct (local features) -> 1x1 conv up to the
  transformer width ``embed_dim`` -> L FWA layers (pre-norm, MLP ratio 2) ->
  LayerNorm -> 1x1 ConvBNAct projection -> FeatureFusion. ``embed_dim`` per
  block is the variant's data, chosen so that every block lands within 5 % of
  its table row (see ``docs/lolvit.md``).
* The initial projection gives two sequences, Query and Token (Sec. 4); layers
  2..L have a Query projection only.
* ``Split(Conv(.))``: a 1x1 conv on the key sequence (an ``nn.Linear`` on
  tokens), no norm, no activation, output order K then V.
* FAWA normalisation: divide each key by the number of tokens summed into it
  (a mean), then LayerNorm.
* FAWA window: groups of ``Pl * Fold`` adjacent columns, ``Pl`` = the patch
  size (the paper's Pw x Pl). Widths not divisible by ``Pl * Fold`` use
  **ceil**: the last group is partial and averaged over its real tokens.
* Patch size p > 1: MobileViT's unfolding of p x p patches into the batch
  dimension; the map is resized (bilinear, as MobileViT) to a multiple of p
  and back.
* FeatureFusion inputs: the block input and the projected transformer output,
  concatenated -> 1x1 ConvBNAct (2C -> C) -> sum of a 3x3 ConvBNAct (the
  bottleneck) and a parallel branch of depth-wise 5x5 and 7x7 ConvBN layers.
* DReLu: one learnable DP per FWA layer (init 0.5, Table 10), eps 1e-6, L the
  key-sequence length of the current input.
* Levels and freezing: level 1 = stem + Ghost 1 (stride 2), level 2 = Ghost 2-3,
  level 3 = Ghost 4 + LOLViTBlock 1, level 4 = Ghost 5 + LOLViTBlock 2,
  level 5 = Ghost 6 + LOLViTBlock 3. Freeze units: the stem conv, then each
  level without the stem (``frozen_stages`` -1..5).
* Classifier: global average pool + Linear (not counted by the paper's tables).

Forms (``lsdense.models.forms``): each module's ``forward`` is the plain reference, on
tensors of rank <= 4 with the batch first (so it is also what exporters capture). After
``fuse()`` the blocks take their fast form (``ConvBNActFast``, ``GhostBottleneckFast``,
``FWALayerFast``, ``LOLViTBlockFast``): eager CPU float32 calls without autograd use
oneDNN fused conv + activation / residual sum on channels-last memory, split ghost
concatenations and the FWA layer with its scales folded into K and V (see
``docs/lolvit.md``); other calls fall back to the reference.
"""

from collections import OrderedDict
from typing import Iterator, List, Optional, Sequence, Tuple, Type

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, SqueezeExcite, trunc_normal_
from timm.models import generate_default_cfgs, register_model
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .factory import create_timm_model
from .forms import refuse_capture, register_forms
from .layers import DenseBackboneMixin, check_global_pool, drop_path_rates, factory_kwargs
from .registry import register_variants

__all__ = ["LOLViT", "FAWA", "DReLu", "FWAttention", "LOLViTBlock", "GhostBottleneck",
           "ConvBNActFast", "GhostBottleneckFast", "FWALayerFast", "LOLViTBlockFast"]


# --- CNN part ---------------------------------------------------------------------

# --- fast form (fused models, eager CPU) -----------------------------------------------
#
# The fast forms use oneDNN's fused convolution + activation
# (``torch.ops.mkldnn._convolution_pointwise``, the op ``torch.compile`` emits for the same
# pattern) in channels-last memory: the depth-wise 5x5 / 3x3 convs at strides 2-4 are
# memory bound, and NCHW costs them a layout reorder per call. They fall back to the
# reference forward under autograd, torch.compile, dispatch modes (FLOP counting, fake
# tensors), off the CPU and for non-float32, and refuse tracers and exporters.

# activation module -> oneDNN post-op name (others: no fast path)
_ONEDNN_ACTS = {nn.SiLU: "swish", nn.ReLU: "relu", nn.Identity: "none"}


def _has_onednn_ops() -> bool:
    """Whether this torch build registers the oneDNN fused ops (x86 builds with mkldnn)."""
    try:
        return (torch.backends.mkldnn.is_available()
                and torch.ops.mkldnn._convolution_pointwise.binary is not None
                and torch.ops.mkldnn._linear_pointwise.binary is not None)
    except (AttributeError, RuntimeError):
        return False


_ONEDNN_OPS = _has_onednn_ops()


def _onednn_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the oneDNN fused ops may replace the plain ones for this call: CPU float32
    without autograd, not compiled (the compiler picks its own kernels) and under no dispatch
    mode (``FlopCounterMode`` and fake tensors must see the plain ops)."""
    return (not torch.compiler.is_compiling() and torch._C._len_torch_dispatch_stack() == 0
            and x.device.type == "cpu" and x.dtype == torch.float32
            and weight.dtype == torch.float32
            and _ONEDNN_OPS and torch.backends.mkldnn.enabled
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)))


@torch.jit.unused
def _hooked(m: nn.Module) -> bool:
    """Whether ``m`` has forward hooks (thop and other module-hook profilers count the plain
    modules, so a hooked model keeps running them)."""
    return bool(m._forward_hooks or m._forward_pre_hooks)


def _conv_slice(conv: nn.Conv2d, lo: int, hi: int, cin: Tuple[int, int], bias: bool
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor], int]:
    """Weight, bias and groups of output channels ``lo:hi`` (all: ``hi < 0``) and input
    channels ``cin`` (all: ``cin[1] < 0``) of ``conv`` (dense or depth-wise)."""
    w, b = conv.weight, conv.bias if bias else None
    if hi >= 0:
        w, b = w[lo:hi], b[lo:hi] if b is not None else None
    if cin[1] >= 0:
        w = w[:, cin[0]:cin[1]]
    return w, b, conv.groups if conv.groups == 1 else w.shape[0]


def _dnn(x: torch.Tensor, conv: nn.Conv2d, act: str = "none", lo: int = 0, hi: int = -1,
         cin: Tuple[int, int] = (0, -1)) -> torch.Tensor:
    """oneDNN ``act(conv(x))`` with output channels ``lo:hi`` and input channels ``cin`` of a
    fused (biased) conv; callers have checked :func:`_onednn_applies`."""
    w, b, groups = _conv_slice(conv, lo, hi, cin, True)
    return torch.ops.mkldnn._convolution_pointwise(
        x, w, b, conv.padding, conv.stride, [1, 1], groups, act, [], "")


def _dnn_add(x: torch.Tensor, other: torch.Tensor, conv: nn.Conv2d, lo: int = 0, hi: int = -1,
             cin: Tuple[int, int] = (0, -1), bias: bool = True) -> torch.Tensor:
    """oneDNN ``conv(x) + other`` (one pass; ``other`` channels-last contiguous), with output
    channels ``lo:hi`` / input channels ``cin`` of ``conv``, and its bias unless ``bias=False``."""
    w, b, groups = _conv_slice(conv, lo, hi, cin, bias)
    return torch.ops.mkldnn._convolution_pointwise.binary(
        x, other, w, b, conv.padding, conv.stride, [1, 1], groups, "add", 1.0, None, [], None)


class ConvBNAct(nn.Module):
    """Conv2d (no bias, 'same' padding) + BatchNorm2d + optional activation.

    ``fuse()`` folds the BatchNorm into the conv (in place) for inference; the fast form
    (:class:`ConvBNActFast`) then runs one oneDNN call on CPU where it applies.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1,
                 groups: int = 1, act_layer: Optional[Type[nn.Module]] = None):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = act_layer() if act_layer is not None else nn.Identity()
        self.fused_act = ""  # oneDNN post-op name once fused ('' = not fused / no fast path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    @torch.no_grad()
    def fuse(self) -> "ConvBNAct":
        if isinstance(self.bn, nn.BatchNorm2d):
            self.conv = fuse_conv_bn_eval(self.conv.eval(), self.bn.eval())
            self.bn = nn.Identity()
        if isinstance(self.bn, nn.Identity) and self.conv.padding_mode == "zeros" \
                and self.conv.dilation == (1, 1):
            self.fused_act = _ONEDNN_ACTS.get(type(self.act), "")
        return self


class ConvBNActFast(ConvBNAct):
    """Fast form of a fused :class:`ConvBNAct`: one oneDNN conv + activation on channels-last
    memory (its output stays channels-last: same values, ``.contiguous()`` gives NCHW)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        refuse_capture(self, x)
        if self.fused_act and x.dim() == 4 and not _hooked(self.conv) \
                and _onednn_applies(x, self.conv.weight):
            return _dnn(x.contiguous(memory_format=torch.channels_last), self.conv, self.fused_act)
        return super().forward(x)


register_forms(ConvBNAct, fast=ConvBNActFast)


class GhostModule(nn.Module):
    """Ghost module (Ultralytics ``GhostConv``): 1x1 primary conv to half the
    output width, cheap depth-wise 5x5 conv on it, concatenated."""

    def __init__(self, in_chs: int, out_chs: int, act_layer: Optional[Type[nn.Module]] = None,
                 dw_size: int = 5):
        super().__init__()
        if out_chs % 2:
            raise ValueError(f"GhostModule needs an even output width, got {out_chs}.")
        init_chs = out_chs // 2
        self.primary_conv = ConvBNAct(in_chs, init_chs, 1, act_layer=act_layer)
        self.cheap_operation = ConvBNAct(init_chs, init_chs, dw_size, groups=init_chs,
                                         act_layer=act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.primary_conv(x)
        return torch.cat([x, self.cheap_operation(x)], dim=1)


class GhostBottleneck(nn.Module):
    """Ghost bottleneck of the timm GhostNet shape (spec, 'Solved: the CNN part').

    ghost(in -> 2*in, act) -> [dw 3x3 stride s + BN] -> [SE] -> ghost(2*in -> out),
    plus an identity shortcut, or dw 3x3 (stride s) + BN -> 1x1 + BN when the
    shape changes.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, use_se: bool = False,
                 act_layer: Type[nn.Module] = nn.SiLU):
        super().__init__()
        mid_chs = 2 * in_chs
        self.ghost1 = GhostModule(in_chs, mid_chs, act_layer)
        self.conv_dw = ConvBNAct(mid_chs, mid_chs, 3, stride, groups=mid_chs) if stride > 1 \
            else nn.Identity()
        # GhostNet's SE: reduced width rounded to a multiple of 4, hard-sigmoid gate
        self.se = SqueezeExcite(mid_chs, rd_ratio=0.25, rd_divisor=4, gate_layer="hard_sigmoid") \
            if use_se else nn.Identity()
        self.ghost2 = GhostModule(mid_chs, out_chs, act_layer=None)
        if in_chs == out_chs and stride == 1:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(ConvBNAct(in_chs, in_chs, 3, stride, groups=in_chs),
                                          ConvBNAct(in_chs, out_chs, 1))
        self.fused = False  # set by fuse(): every conv folded, the fast form applies

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ghost2(self.se(self.conv_dw(self.ghost1(x))))
        return y + self.shortcut(x)

    def _forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        """Fused CPU inference, channels-last: the same maps with fewer memory passes. The
        ghost concatenations at full resolution are split instead (a 1x1 conv of a concat
        is a sum of two 1x1 convs, a depth-wise conv acts per channel), and the residual
        sum is fused into the last convs of each half of the output."""
        x = x.contiguous(memory_format=torch.channels_last)
        g1, g2 = self.ghost1, self.ghost2
        p1 = _dnn(x, g1.primary_conv.conv, g1.primary_conv.fused_act)
        c1 = _dnn(p1, g1.cheap_operation.conv, g1.cheap_operation.fused_act)
        n1 = p1.shape[1]
        pw2 = g2.primary_conv.conv
        if isinstance(self.conv_dw, nn.Identity) and isinstance(self.se, nn.Identity):
            p2 = _dnn_add(c1, _dnn(p1, pw2, cin=(0, n1)), pw2, cin=(n1, 2 * n1), bias=False)
        else:
            if isinstance(self.conv_dw, ConvBNAct):  # stride s: per channel, so per half
                dw = self.conv_dw.conv
                z = torch.cat([_dnn(p1, dw, lo=0, hi=n1), _dnn(c1, dw, lo=n1, hi=2 * n1)], 1)
            else:
                z = torch.cat([p1, c1], 1)
            p2 = _dnn(self.se(z), pw2)
        n2 = p2.shape[1]
        cheap = g2.cheap_operation.conv
        if isinstance(self.shortcut, nn.Identity):
            y = torch.cat([p2, _dnn(p2, cheap)], 1)
            y += x
            return y
        s = _dnn(x, self.shortcut[0].conv)  # depth-wise 3x3 (stride s), then 1x1 per half
        pw = self.shortcut[1].conv
        a = _dnn_add(s, p2, pw, 0, n2)
        # the sum rides on the 1x1 conv (oneDNN fuses a sum into 1x1 convs, not depth-wise)
        b = _dnn_add(s, _dnn(p2, cheap), pw, n2, 2 * n2)
        return torch.cat([a, b], 1)

    @torch.no_grad()
    def fuse(self) -> "GhostBottleneck":
        """Fold every BatchNorm (in place); the fast form applies once all convs are folded."""
        for m in self.modules():
            if isinstance(m, ConvBNAct):
                m.fuse()
        convs = [m for m in self.modules() if isinstance(m, ConvBNAct)]
        self.fused = all(m.fused_act for m in convs)
        return self


class GhostBottleneckFast(GhostBottleneck):
    """Fast form of a fused :class:`GhostBottleneck` (:meth:`_forward_fast` where oneDNN
    applies, else the reference)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        refuse_capture(self, x)
        if self.fused and not _hooked(self.ghost1.primary_conv.conv) \
                and _onednn_applies(x, self.ghost1.primary_conv.conv.weight):
            return self._forward_fast(x)
        return super().forward(x)


register_forms(GhostBottleneck, fast=GhostBottleneckFast)


# --- Fast Window Attention ----------------------------------------------------------

def _ceil_div(a: int, b: int) -> int:
    """ceil(a / b) for a >= 0, b > 0."""
    # not -(-a // b): the TorchScript ONNX exporter maps `//` on traced sizes to a
    # truncating Div, which turns that into floor (0 keys when a < b)
    return (a + b - 1) // b


class DReLu(nn.Module):
    """Dynamic sequence length ReLU (Eq. 3): ``ReLU(x) / ((DP + eps) * L)``.

    Replaces SoftMax on the attention logits; ``L`` is the key-sequence length
    of the current input (the last dim of ``x``), ``DP`` a learnable scalar.
    """

    def __init__(self, dp_init: float = 0.5, eps: float = 1e-6):
        super().__init__()
        self.dp = nn.Parameter(torch.tensor(float(dp_init)))  # Table 10: 0.5 is best
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x) / ((self.dp + self.eps) * x.shape[-1])


class FAWA(nn.Module):
    """Full-scene Adaptive Window Aggregation (Eq. 4): key tokens from the sequence.

    The row-major sequence of an ``h x w`` token map is chunked into rows of
    length ``F = w``, the chunks are summed position-wise, then groups of
    ``window * fold`` adjacent positions are summed, giving
    ``ceil(w / (window * fold))`` keys: their number follows the input width.
    Each key is divided by the number of tokens summed into it (a partial last
    group counts only its real tokens), then LayerNorm'ed.

    Args:
        dim: token width.
        window: ``Pl``, adjacent positions summed per key (the patch length).
        fold: further compression of the key sequence by this factor.
    """

    def __init__(self, dim: int, window: int = 1, fold: int = 1):
        super().__init__()
        self.window = window
        self.fold = fold
        self.norm = nn.LayerNorm(dim)

    def num_keys(self, width: int) -> int:
        """Key-sequence length for a token map of this width (ceil)."""
        return _ceil_div(width, self.window * self.fold)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        """(B, h*w, D) tokens -> (B, ceil(w / (window * fold)), D) key tokens."""
        return self.norm(self.pool(x, hw))

    def pool(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        """The mean over each key's tokens, before the LayerNorm (linear in ``x``)."""
        b, _, d = x.shape
        h, w = hw
        g = self.window * self.fold
        n = self.num_keys(w)
        x = x.reshape(b, h, w, d).sum(1)  # sum the chunks of length F = w position-wise
        # ceil: zero-pad a partial last group; unconditional (pad 0 when Pl * Fold divides
        # w) so that an exported graph has no `if` on sizes frozen by the trace
        x = F.pad(x, (0, 0, 0, n * g - w))
        x = x.reshape(b, n, g, d).sum(2)
        count = (w - torch.arange(n, device=x.device) * g).clamp(max=g) * h
        return x / count.to(x.dtype)[:, None]


class FWAttention(nn.Module):
    """Fast Window Attention (Eq. 2, 5) with the key-sequence cache.

    The first layer of a block projects tokens to Query and Token, builds the
    key sequence ``FAWA(Token)`` and returns it as the cache; later layers only
    project a Query and reuse the cache. Each layer has its own 1x1 conv
    (``kv``) that maps the key sequence to K and V (``Split(Conv(.))``).
    """

    def __init__(self, dim: int, num_heads: int = 4, window: int = 1, fold: int = 1,
                 first: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"FWAttention: dim={dim} must be divisible by num_heads={num_heads}.")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.first = first
        if first:
            self.qt = nn.Linear(dim, 2 * dim)  # Query and Token (Sec. 4)
            self.fawa = FAWA(dim, window, fold)
        else:
            self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)  # Split(Conv(.)): 1x1, no norm/act, order K, V
        self.drelu = DReLu()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int],
                cache: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return ``(output, key-sequence cache)`` for tokens ``x`` of an ``hw`` map."""
        b, n, c = x.shape
        if hasattr(self, "qt"):  # the first layer (TorchScript resolves hasattr statically)
            q, tok = self.qt(x).chunk(2, dim=-1)
            cache = self.fawa(tok, hw)
        else:
            if cache is None:
                raise ValueError("FWAttention: layers 2..L need the key sequence of layer 1 "
                                 "(pass the cache the first layer returned).")
            q = self.q(x)
        k, v = self.kv(cache).chunk(2, dim=-1)
        q = q.reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        k = k.reshape(b, -1, self.num_heads, self.head_dim).transpose(1, 2)
        v = v.reshape(b, -1, self.num_heads, self.head_dim).transpose(1, 2)
        attn = self.drelu((q @ k.transpose(-2, -1)) * self.scale)
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x), cache

    def forward_fast(self, x: torch.Tensor, hw: Tuple[int, int],
                     cache: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` with fewer passes over the (B, heads, N, L) logits (inference;
        equal up to float rounding): the Token projection is never formed (FAWA's mean
        is linear, so ``FAWA(x W + b) = LN(mean(x) W + b)``), the positive ``scale``
        moves into K (``ReLU(s a) = s ReLU(a)`` for ``s > 0``) and DReLu's divisor into V
        (it follows the ReLU), and the ReLU runs in place."""
        b, n, c = x.shape
        if hasattr(self, "qt"):
            w, bias = self.qt.weight, self.qt.bias
            q = F.linear(x, w[:c], bias[:c])
            cache = self.fawa.norm(F.linear(self.fawa.pool(x, hw), w[c:], bias[c:]))
        else:
            if cache is None:
                raise ValueError("FWAttention: layers 2..L need the key sequence of layer 1 "
                                 "(pass the cache the first layer returned).")
            q = self.q(x)
        kv = self.kv(cache)
        num_keys = kv.shape[1]
        k = kv[..., :c] * self.scale
        v = kv[..., c:] / ((self.drelu.dp + self.drelu.eps) * num_keys)
        heads, hd = self.num_heads, self.head_dim
        # head-major transposed layouts, so that no operand of the products is copied:
        # Q^T per head (B, H, hd, N), logits (B, H, N, L), output^T (B, H, hd, N)
        q_t = q.transpose(1, 2).reshape(b, heads, hd, n) if q.is_contiguous() else \
            q.reshape(b, n, heads, hd).permute(0, 2, 3, 1)
        k = k.reshape(b, num_keys, heads, hd).transpose(1, 2)
        v = v.reshape(b, num_keys, heads, hd).permute(0, 2, 3, 1)  # (B, H, hd, L)
        attn = torch.matmul(q_t.transpose(-2, -1), k.transpose(-2, -1)).relu_()
        out = torch.matmul(v, attn.transpose(-2, -1))  # (B, H, hd, N)
        return self.proj(out.reshape(b, c, n).transpose(1, 2)), cache


class FWALayer(nn.Module):
    """Pre-norm transformer layer: ``x + FWA(LN(x))``, then ``x + MLP(LN(x))``."""

    def __init__(self, dim: int, num_heads: int, window: int, fold: int, first: bool,
                 mlp_ratio: float = 2.0, act_layer: Type[nn.Module] = nn.SiLU,
                 drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = FWAttention(dim, num_heads, window, fold, first)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        # oneDNN post-op for the MLP activation ('' = none: the fast path does not apply)
        self.mlp_act = _ONEDNN_ACTS.get(act_layer, "") if act_layer is not nn.Identity else ""

    def forward(self, x: torch.Tensor, hw: Tuple[int, int],
                cache: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(tokens, key-sequence cache)`` for ``(B, N, D)`` tokens of an ``hw`` map."""
        y, cache = self.attn(self.norm1(x), hw, cache)
        x = x + self.drop_path1(y)
        x = x + self.drop_path2(self.mlp(self.norm2(x)))
        return x, cache

    def _forward_fast(self, x: torch.Tensor, hw: Tuple[int, int],
                      cache: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """CPU inference (eval: no drop path / dropout): FWAttention.forward_fast, and the
        MLP as two oneDNN linears, fc1 with its SiLU and fc2 with the residual sum fused."""
        y, cache = self.attn.forward_fast(self.norm1(x), hw, cache)
        x = x + y
        b, n, c = x.shape
        mlp = self.mlp
        h = self.norm2(x).reshape(b * n, c)
        h = torch.ops.mkldnn._linear_pointwise(h, mlp.fc1.weight, mlp.fc1.bias, self.mlp_act,
                                               [], "")
        x = torch.ops.mkldnn._linear_pointwise.binary(h, x.reshape(b * n, c), mlp.fc2.weight,
                                                      mlp.fc2.bias, "add")
        return x.reshape(b, n, c), cache


class FWALayerFast(FWALayer):
    """Fast form of :class:`FWALayer` (:meth:`FWALayer._forward_fast` in eval mode where
    oneDNN applies, else the reference)."""

    def forward(self, x: torch.Tensor, hw: Tuple[int, int],
                cache: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        refuse_capture(self, x)
        if self.mlp_act and not self.training and not _hooked(self.mlp.fc1) \
                and _onednn_applies(x, self.mlp.fc1.weight):
            return self._forward_fast(x, hw, cache)
        return super().forward(x, hw, cache)


register_forms(FWALayer, fast=FWALayerFast)


def tokens_from_patches(y: torch.Tensor, p: int) -> torch.Tensor:
    """MobileViT's unfolding: ``(B, D, nh p, nw p)`` -> ``(B p p, nh nw, D)``, each pixel
    offset of a ``p x p`` patch one sequence (batch index ``b p^2 + p_h p + p_w``).

    Written with tensors of rank <= 4 (runtimes such as ncnn and CoreML take no more), which
    for ``p = 1`` are views of a channels-last map."""
    b, d, hp, wp = y.shape
    nh, nw = hp // p, wp // p
    if p == 1:
        return y.flatten(2).transpose(1, 2)
    t = y.reshape(b * d * nh, p, nw, p).permute(0, 1, 3, 2)  # (b d nh), ph, pw, nw
    t = t.reshape(b * d, nh, p * p, nw).permute(0, 2, 1, 3)  # (b d), (ph pw), nh, nw
    return t.reshape(b, d, p * p, nh * nw).permute(0, 2, 3, 1).reshape(b * p * p, nh * nw, d)


def patches_from_tokens(t: torch.Tensor, p: int, nh: int, nw: int) -> torch.Tensor:
    """Inverse of :func:`tokens_from_patches`: ``(B p p, nh nw, D)`` -> ``(B, D, nh p, nw p)``
    (rank <= 4; for ``p = 1`` a channels-last view)."""
    bpp, _, d = t.shape
    b = bpp // (p * p)
    if p == 1:
        return t.reshape(b, nh, nw, d).permute(0, 3, 1, 2)
    y = t.reshape(b, p * p, nh * nw, d).permute(0, 3, 1, 2)  # b, d, (ph pw), (nh nw)
    y = y.reshape(b * d, p * p, nh, nw).permute(0, 2, 1, 3)  # (b d), nh, (ph pw), nw
    y = y.reshape(b * d * nh, p, p, nw).permute(0, 1, 3, 2)  # (b d nh), ph, nw, pw
    return y.reshape(b, d, nh * p, nw * p)


class FeatureFusion(nn.Module):
    """Global-local fusion (Appendix A) of the block input and the transformer output.

    ``cat(x, y)`` -> 1x1 ConvBNAct (2C -> C) -> a 3x3 ConvBNAct (the bottleneck)
    summed with a small parallel branch of depth-wise 5x5 and 7x7 convs.
    """

    def __init__(self, dim: int, act_layer: Type[nn.Module] = nn.SiLU):
        super().__init__()
        self.reduce = ConvBNAct(2 * dim, dim, 1, act_layer=act_layer)
        self.conv = ConvBNAct(dim, dim, 3, act_layer=act_layer)
        self.local = nn.Sequential(ConvBNAct(dim, dim, 5, groups=dim, act_layer=act_layer),
                                   ConvBNAct(dim, dim, 7, groups=dim))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = self.reduce(torch.cat([x, y], dim=1))
        return self.conv(z) + self.local(z)


class LOLViTBlock(nn.Module):
    """LOLViTBlock (Fig. 2): local conv -> 1x1 up to ``embed_dim`` -> L FWA layers
    -> 1x1 projection back to ``dim`` -> FeatureFusion with the block input.

    Args:
        dim: block input/output channels.
        embed_dim: transformer width.
        depth: transformer layers L (layers 2..L reuse layer 1's key sequence).
        num_heads: attention heads.
        fold: FAWA key-sequence compression factor.
        patch_size: p; p > 1 unfolds p x p patches into the batch dimension.
        mlp_ratio: transformer MLP hidden width / ``embed_dim``.
        act_layer: activation of convs and MLP.
        drop_path: stochastic depth per transformer layer.
    """

    def __init__(self, dim: int, embed_dim: int, depth: int = 1, num_heads: int = 4,
                 fold: int = 1, patch_size: int = 1, mlp_ratio: float = 2.0,
                 act_layer: Type[nn.Module] = nn.SiLU, drop_path: Sequence[float] = ()):
        super().__init__()
        self.patch_size = patch_size
        dpr = list(drop_path) or [0.0] * depth
        self.conv_local = ConvBNAct(dim, dim, 3, groups=dim, act_layer=act_layer)
        self.conv_expand = nn.Conv2d(dim, embed_dim, 1, bias=False)
        self.transformer = nn.ModuleList([
            FWALayer(embed_dim, num_heads, patch_size, fold, i == 0, mlp_ratio, act_layer, dpr[i])
            for i in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_proj = ConvBNAct(embed_dim, dim, 1, act_layer=act_layer)
        self.fusion = FeatureFusion(dim, act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._mix(x, self.conv_expand(self.conv_local(x)))

    def _mix(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The block after ``conv_expand``: ``y`` ``(B, embed_dim, H, W)`` through the
        transformer, projected and fused with the block input ``x``."""
        b, d, h, w = y.shape
        p = self.patch_size
        nh, nw = _ceil_div(h, p), _ceil_div(w, p)
        # MobileViT: resize to a multiple of the patch size, and back at the end. Decided by
        # the patch size, not the input size, so that torch.fx graphs have no size branch;
        # a resize to the same size is exact (bilinear weights 1 and 0).
        resize = p > 1
        if resize:
            y = F.interpolate(y, size=(nh * p, nw * p), mode="bilinear", align_corners=False)
        t = tokens_from_patches(y, p)
        cache = None
        for layer in self.transformer:
            t, cache = layer(t, (nh, nw), cache)
        y = patches_from_tokens(self.norm(t), p, nh, nw)
        if resize:
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        return self.fusion(x, self.conv_proj(y))


class LOLViTBlockFast(LOLViTBlock):
    """Fast form of :class:`LOLViTBlock`: ``conv_expand`` as one oneDNN call on channels-last
    memory where it applies (the tokens are then a view); the block's map leaves in NCHW, as
    the reference gives it (Ultralytics' head at one thread is ~5 % faster on NCHW)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        refuse_capture(self, x)
        y = self.conv_local(x)
        c = self.conv_expand
        if y.dim() == 4 and not _hooked(c) and _onednn_applies(y, c.weight):
            y = _dnn(y.contiguous(memory_format=torch.channels_last), c)
        else:
            y = c(y)
        return self._mix(x, y).contiguous()


register_forms(LOLViTBlock, fast=LOLViTBlockFast)


# --- model ------------------------------------------------------------------------

class LOLViT(DenseBackboneMixin, nn.Module):
    """LOLViT for classification (``dense=False``) or as a dense backbone (``dense=True``).

    Args:
        stem_chs: channels of the 3x3 stride-2 conv stem.
        widths: output channels of Ghost bottlenecks 1..6 (tables 16/17).
        embed_dims: transformer widths of LOLViTBlocks 1..3.
        depths: transformer layers L per LOLViTBlock (paper default 1-1-1).
        num_heads: heads per LOLViTBlock (Table 12: 4-4-4).
        folds: FAWA Fold per LOLViTBlock (1-2-4).
        patch_sizes: patch size per LOLViTBlock (1-1-1).
        mlp_ratio: transformer MLP hidden width / embed dim.
        ghost_strides: strides of Ghost bottlenecks 1..6.
        ghost_se: squeeze-excite in Ghost bottlenecks 1..6.
        act_layer: activation (SiLU, see the module docstring).
        num_classes: classifier classes (0: no classifier); ignored when dense.
        in_chans: input channels.
        dense: return the five level maps (strides 2..32) instead of logits.
        out_indices, frozen_stages, norm_eval: backbone contract (see layers.py);
            freeze units are the stem conv, then one per level.
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth over all transformer layers.
        global_pool: 'avg' (or timm's 'max', 'avgmax', 'fast*'), or '' (no pooling: with
            ``num_classes=0`` the model returns the (B, C, H, W) level-5 map).
        device, dtype: where and in which precision to create the tensors (timm's
            factory arguments).
    """

    @factory_kwargs
    def __init__(self, stem_chs: int = 32, widths: Sequence[int] = (32, 64, 64, 96, 128, 192),
                 embed_dims: Sequence[int] = (120, 160, 208), depths: Sequence[int] = (1, 1, 1),
                 num_heads: Sequence[int] = (4, 4, 4), folds: Sequence[int] = (1, 2, 4),
                 patch_sizes: Sequence[int] = (1, 1, 1), mlp_ratio: float = 2.0,
                 ghost_strides: Sequence[int] = (1, 2, 1, 2, 2, 2),
                 ghost_se: Sequence[bool] = (False, False, False, True, True, True),
                 act_layer: Type[nn.Module] = nn.SiLU, num_classes: int = 1000, in_chans: int = 3,
                 dense: bool = False, out_indices: Optional[Sequence[int]] = None,
                 frozen_stages: int = -1, norm_eval: bool = False, drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, global_pool: str = "avg", **kwargs):
        super().__init__()
        if kwargs:
            raise TypeError(f"LOLViT got unexpected arguments: {sorted(kwargs)}")
        if not len(widths) == len(ghost_strides) == len(ghost_se) == 6:
            raise ValueError(
                f"LOLViT has six Ghost bottlenecks: give six widths / ghost_strides / ghost_se "
                f"(got {len(widths)}, {len(ghost_strides)}, {len(ghost_se)}).")
        per_block = dict(embed_dims=embed_dims, depths=depths, num_heads=num_heads, folds=folds,
                         patch_sizes=patch_sizes)
        wrong = {k: len(v) for k, v in per_block.items() if len(v) != 3}
        if wrong:
            raise ValueError(f"LOLViT has three LOLViTBlocks: give three values for each of "
                             f"{', '.join(per_block)} (got lengths {wrong}).")
        self.in_chans = in_chans
        self.dense = dense
        self.num_classes = 0 if dense else num_classes
        self.num_features = self.head_hidden_size = widths[-1]
        self.global_pool = check_global_pool("LOLViT", global_pool)
        self.drop_rate = drop_rate

        self.stem = ConvBNAct(in_chans, stem_chs, 3, 2, act_layer=act_layer)
        ghosts, chs = [], stem_chs
        for i, (c, s, se) in enumerate(zip(widths, ghost_strides, ghost_se)):
            ghosts.append((f"ghost{i + 1}", GhostBottleneck(chs, c, s, se, act_layer)))
            chs = c
        dpr = drop_path_rates(depths, drop_path_rate)
        vits = []
        for i, rates in enumerate(dpr):
            vits.append((f"lolvit{i + 1}", LOLViTBlock(
                widths[3 + i], embed_dims[i], depths[i], num_heads[i], folds[i], patch_sizes[i],
                mlp_ratio, act_layer, rates)))
        # levels (strides 2, 4, 8, 16, 32): [G1], [G2, G3], [G4, V1], [G5, V2], [G6, V3]
        levels = [ghosts[:1], ghosts[1:3], [ghosts[3], vits[0]], [ghosts[4], vits[1]],
                  [ghosts[5], vits[2]]]
        self.stages = nn.Sequential(*[nn.Sequential(OrderedDict(lv)) for lv in levels])
        self.feature_info = self._level_info(widths)
        self.head_drop = nn.Dropout(drop_rate)
        self.head: nn.Module = nn.Identity()
        self.reset_classifier(self.num_classes)
        self.apply(self._init_weights)
        self._setup_dense(out_indices, frozen_stages, norm_eval)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def named_blocks(self) -> Iterator[Tuple[str, nn.Module]]:
        """The modules of the paper's tables 16/17, in order: stem, ghost1, ..., lolvit3."""
        yield "stem", self.stem
        for stage in self.stages:
            yield from stage.named_children()

    # --- backbone contract --------------------------------------------------------
    @staticmethod
    def _level_info(widths: Sequence[int], **_) -> List[dict]:
        level_chs = [widths[0], widths[2], widths[3], widths[4], widths[5]]
        return [dict(num_chs=c, reduction=2 ** (i + 1), module=f"stages.{i}")
                for i, c in enumerate(level_chs)]

    def _freeze_units(self) -> List[nn.Module]:
        return [self.stem, *self.stages]

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        """Parameters exempt from weight decay: DReLu's DP scalars (a 0-d learned scale)."""
        return {n for n, _ in self.named_parameters() if n.endswith("drelu.dp")}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        """Parameter groups for layer-wise learning-rate decay (timm API)."""
        return dict(stem=r"^stem",
                    blocks=r"^stages\.(\d+)" if coarse else [(r"^stages\.(\d+)\.ghost", (0,)),
                                                             (r"^stages\.(\d+)\.lolvit", (1,))])

    def _new_classifier(self, num_classes: int, device=None, dtype=None) -> nn.Module:
        head = nn.Linear(self.num_features, num_classes, device=device, dtype=dtype)
        self._init_weights(head)
        return head


def _cfg(**kwargs) -> dict:
    return dict(num_classes=1000, input_size=(3, 224, 224), test_input_size=(3, 384, 384),
                pool_size=(7, 7), crop_pct=0.875, interpolation="bicubic",
                mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), first_conv="stem.conv",
                classifier="head", paper_ids="arXiv:2508.01385", **kwargs)


# No official weights exist: no URLs.
default_cfgs = generate_default_cfgs({"lolvit_s": _cfg(), "lolvit_x": _cfg()})

# Variants are data. The CNN widths reproduce tables 16/17 exactly (spec); the
# transformer widths are chosen to land within 5 % of each LOLViTBlock row.
MODEL_ARGS = {
    "lolvit_s": dict(stem_chs=16, widths=(32, 48, 48, 64, 96, 128), embed_dims=(104, 136, 160)),
    "lolvit_x": dict(stem_chs=32, widths=(32, 64, 64, 96, 128, 192), embed_dims=(120, 160, 208)),
}


def _create_lolvit(variant: str, pretrained: bool = False, **kwargs) -> LOLViT:
    return create_timm_model(LOLViT, variant, pretrained, MODEL_ARGS[variant], (0, 1, 2, 3, 4),
                             **kwargs)


@register_model
def lolvit_s(pretrained: bool = False, **kwargs) -> LOLViT:
    return _create_lolvit("lolvit_s", pretrained, **kwargs)


@register_model
def lolvit_x(pretrained: bool = False, **kwargs) -> LOLViT:
    return _create_lolvit("lolvit_x", pretrained, **kwargs)


register_variants("lolvit", LOLViT, MODEL_ARGS, dense_args={})
