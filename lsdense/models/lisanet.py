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
``irfft2(rfft2(x) * rfft2(kernel))`` (Eq. 13/14). :func:`lisa_reference`
evaluates the same equations directly (O(N^2), Hadamard correlation times
circulant RPE matrices) and the tests check the two agree.

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
      (:func:`lisa_spectral_paired`: ``x (*) r_d + i x (*) r_e`` from one ``ifft2``), since
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
nor the LiSA weighted sums; ``lsdense.benchmark.count_flops`` adds them (formula in
:meth:`LiSA.extra_flops`: ``2.5 N log2 N`` real flops per real 2-D FFT).
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, LayerNorm2d, to_2tuple, trunc_normal_
from timm.models import generate_default_cfgs, register_model

from .factory import create_timm_model
from .layers import (DenseBackboneMixin, EvalCache, check_global_pool, drop_path_rates,
                     factory_kwargs, inference_forms_apply, resize_hw)
from .registry import register_variants

__all__ = ["LiSA", "LiSANet", "LiSANetI", "lisa_fft", "lisa_spectral", "lisa_spectral_broadcast",
           "lisa_spectral_paired", "pair_spectra", "lisa_reference",
           "resize_kernel", "circular_kernel", "rfft2_real", "irfft2_real", "MODEL_ARGS"]

_KERNEL_SUFFIXES = (".attn.r1", ".attn.r2")


# --- the operator -------------------------------------------------------------------

def resize_kernel(kernel: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Resize centred circular kernels ``(..., H0, W0)`` to ``(..., H, W)`` (bicubic).

    Offset ``u`` (in tokens) of the new grid samples offset ``u * H0 / H`` of the
    old one, so zero offset stays at index ``(H // 2, W // 2)`` and the kernel
    keeps covering the same fraction of the image. Border taps read wrapped
    values (the kernels are circular). The result is scaled by ``H0 W0 / (H W)``
    to keep the kernel sum. Returns ``kernel`` itself when the size matches.
    """
    h0, w0 = kernel.shape[-2], kernel.shape[-1]
    h, w = size
    if h0 == h and w0 == w:
        return kernel
    x = kernel.reshape(1, -1, h0, w0).repeat(1, 1, 3, 3)  # periodic copy around the kernel
    gy, gx = torch.meshgrid(_tiled_grid(h, h0, kernel), _tiled_grid(w, w0, kernel), indexing="ij")
    grid = torch.stack((gx, gy), dim=-1)[None]
    out = F.grid_sample(x, grid, mode="bicubic", padding_mode="border", align_corners=True)
    return out.reshape(list(kernel.shape[:-2]) + [h, w]) * (h0 * w0 / (h * w))


def _tiled_grid(n: int, n0: int, like: torch.Tensor) -> torch.Tensor:
    """grid_sample coordinates of the n offsets of a new grid in the 3x tiled n0 kernel."""
    offset = torch.arange(n, device=like.device, dtype=like.dtype) - n // 2
    index = offset * (n0 / n) + n0 // 2 + n0  # index into the 3x tiled kernel
    return index * (2.0 / (3 * n0 - 1)) - 1.0  # align_corners=True normalisation


def _fft_dtype(dtype: torch.dtype) -> torch.dtype:
    # FFTs in float32 at least: half-precision cuFFT only takes power-of-two sizes
    return dtype if dtype == torch.float32 or dtype == torch.float64 else torch.float32


@torch.fx.wrap  # leaf call in torch.fx graphs (its size branch runs on real tensors)
def lisa_kernel_spectra(r1: torch.Tensor, r2: torch.Tensor,
                        qkv: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Paired spectra (:func:`pair_spectra`) of the centred kernels resized to ``qkv``'s
    grid, in its FFT dtype.

    The uncached path (TorchScript, ``torch.fx`` graphs, training); :meth:`LiSA.spectra`
    caches the same values in eval mode.
    """
    h, w = qkv.shape[-2], qkv.shape[-1]
    dtype = _fft_dtype(qkv.dtype)
    k1 = torch.fft.ifftshift(resize_kernel(r1, (h, w)), dim=(-2, -1))
    k2 = torch.fft.ifftshift(resize_kernel(r2, (h, w)), dim=(-2, -1))
    return pair_spectra(k1.to(dtype)), pair_spectra(k2.to(dtype))


@torch.fx.wrap  # leaf call in torch.fx graphs (FFTs and dtype choice run on real tensors)
def lisa_attention(qkv: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor,
                   num_heads: int, eps: float) -> torch.Tensor:
    """LiSA on the ``(B, 3C, H, W)`` output of the qkv projection: ``(B, C, H, W)``.

    ``p1``, ``p2``: paired kernel spectra (:func:`pair_spectra`) at ``qkv``'s grid.
    """
    b, c3, h, w = qkv.shape
    c = c3 // 3
    dtype = _fft_dtype(qkv.dtype)
    q, k, v = qkv.to(dtype).reshape(b, 3, num_heads, c // num_heads, h, w).unbind(1)
    y = lisa_spectral_paired(q, k, v, p1, p2, eps)
    return y.reshape(b, c, h, w).to(qkv.dtype)


def _circular_offsets(n, n0: int, device, dtype) -> torch.Tensor:
    """Source index (into the 3x tiled centred kernel) of each tap of a circular ``n`` grid.

    Circular index ``i`` holds offset ``((i + n // 2) mod n) - n // 2``, the layout
    ``ifftshift`` gives; sampling these offsets directly folds the shift into the resize
    (no copy, and exportable for a traced ``n``).
    """
    i = torch.arange(n, device=device)
    offset = ((i + n // 2) % n - n // 2).to(dtype)
    return offset * (n0 / n) + n0 // 2 + n0


def circular_kernel(kernel: torch.Tensor, size: Tuple[int, int], always_sample: bool = False
                    ) -> torch.Tensor:
    """``ifftshift(resize_kernel(kernel, size))`` in one step: zero offset at index ``[0, 0]``.

    Args:
        kernel: centred kernels ``(..., H0, W0)`` (zero offset at ``(H0 // 2, W0 // 2)``).
        size: ``(H, W)`` of the circular grid.
        always_sample: resample even when ``size`` is the stored grid (ONNX export, where
            the size may be a traced value; bicubic at integer taps returns the tap).

    Returns:
        ``(..., H, W)``; at the stored grid (and not ``always_sample``) a ``roll`` of the
        kernel, otherwise one bicubic ``grid_sample`` whose sample grid is already in
        circular order, scaled by ``H0 W0 / (H W)`` as :func:`resize_kernel` does.
    """
    (h0, w0), (h, w) = kernel.shape[-2:], size
    if not always_sample and (h0, w0) == (h, w):
        return torch.roll(kernel, (-(h0 // 2), -(w0 // 2)), (-2, -1))
    x = kernel.reshape(1, -1, h0, w0).repeat(1, 1, 3, 3)  # periodic copy around the kernel
    gy = _circular_offsets(h, h0, kernel.device, kernel.dtype) * (2.0 / (3 * h0 - 1)) - 1.0
    gx = _circular_offsets(w, w0, kernel.device, kernel.dtype) * (2.0 / (3 * w0 - 1)) - 1.0
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None]  # (1, H, W, 2)
    out = F.grid_sample(x, grid, mode="bicubic", padding_mode="border", align_corners=True)
    return out.reshape(kernel.shape[:-2] + out.shape[-2:]) * (h0 * w0 / (h * w))


def _l2_normalise(x: torch.Tensor, eps: float) -> torch.Tensor:
    # eps inside the sqrt (spec), channels are dim 2 of (B, heads, dk, H, W)
    return x * torch.rsqrt(x.pow(2).sum(2, keepdim=True) + eps)


def _w_major(spectrum: torch.Tensor) -> torch.Tensor:
    """Same values and shape ``(..., H, W')``, memory ordered ``(..., W', H)``.

    ``irfft2`` first transforms along H; from this layout it needs none of the two
    transposing copies it makes of an ``(H, W')``-ordered input (measured: irfft2 of
    64 x 160 x 81 in 3.3 instead of 5.5 ms; LiSANet-S at 640 1.07x end to end).
    """
    return spectrum.transpose(-1, -2).contiguous().transpose(-1, -2)


def lisa_spectral(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, r1_hat: torch.Tensor,
                  r2_hat: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """LiSA from rfft2 kernel spectra (Eq. 13/14), one pattern at a time: the real-FFT
    form :class:`LiSA` ran before :func:`lisa_spectral_paired` (kept as a reference).

    Equal to :func:`lisa_spectral_broadcast` (the plain form; tested in values and
    gradients) but one structural pattern ``d`` at a time, accumulating ``y`` in place:
    ``s_d`` needs only pattern ``d``, so each step's spectral product and inverse
    transforms are one pattern's ``(B, heads, dk, H, W)`` maps instead of the ``D``
    times larger all-pattern tensors, which at 640 px input (stage 1: 52 MB each) leave
    the cache and cost more in copies than the transforms themselves (1.7-2.2x faster
    per layer, ``docs/benchmarks.md``). Heads stay batched in every transform; spectra
    are kept in the memory order irfft2 reads without copying (:func:`_w_major`; pass
    :class:`LiSA`'s cached spectra, or any layout at some cost).

    Args:
        q, k, v: ``(B, heads, dk, H, W)``.
        r1_hat: ``rfft2`` of the circular R1 kernels, ``(D, dk, H, W // 2 + 1)``.
        r2_hat: ``rfft2`` of the circular R2 kernels, ``(D, H, W // 2 + 1)``.
        eps: added inside the sqrt of the q/k L2 norms.

    Returns:
        ``(B, heads, dk, H, W)``.
    """
    size = q.shape[-2:]
    q, k = _l2_normalise(q, eps), _l2_normalise(k, eps)
    k_hat, v_hat = _w_major(torch.fft.rfft2(k)), _w_major(torch.fft.rfft2(v))
    y = torch.zeros_like(v)
    for d in range(r1_hat.shape[0]):
        # s_d = sum_c q_c * (R1[d, c] (*) k_c), then y += s_d * (R2[d] (*) v)
        s_d = (q * torch.fft.irfft2(k_hat * r1_hat[d], s=size)).sum(2, keepdim=True)
        y = y.addcmul_(s_d, torch.fft.irfft2(v_hat * r2_hat[d], s=size))
    return y


def lisa_spectral_broadcast(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                            r1_hat: torch.Tensor, r2_hat: torch.Tensor,
                            eps: float = 1e-6) -> torch.Tensor:
    """Plain form of :func:`lisa_spectral`: all patterns in one broadcast (the reference).

    Same arguments and result. Materialises the ``(B, heads, D, dk, H, W // 2 + 1)``
    spectral product and its ``(B, heads, D, dk, H, W)`` inverse.
    """
    size = q.shape[-2:]
    q, k = _l2_normalise(q, eps), _l2_normalise(k, eps)
    k_conv = torch.fft.irfft2(torch.fft.rfft2(k).unsqueeze(2) * r1_hat, s=size)  # R1[d,c] (*) k_c
    s = (q.unsqueeze(2) * k_conv).sum(3)  # (B, heads, D, H, W) structural patterns
    v_conv = torch.fft.irfft2(torch.fft.rfft2(v).unsqueeze(2) * r2_hat[:, None], s=size)
    return (s.unsqueeze(3) * v_conv).sum(2)


# --- the paired form: two patterns per complex transform (the path LiSA runs) ---------------
#
# The circular convolutions of one real map with two real kernels r_d, r_e are the real and
# imaginary parts of one complex convolution with r_d + i r_e (linearity, both results real):
# ``x (*) r_d + i x (*) r_e = ifft2(fft2(x) * fft2(r_d + i r_e))``. One complex inverse
# transform per pattern pair replaces two real ones (irfft2), which torch's CPU backend runs
# several times slower per map than the complex ifft2 (4-12x measured at 20-160 px grids,
# docs/benchmarks.md; its c2r path copies and transposes).

_PAIRED_CHUNK_BYTES = 2 << 20  # spectrum bytes per chunk and thread (best of 0.5-4 MB, 1 thread)


def pair_spectra(kernels: torch.Tensor) -> torch.Tensor:
    """``fft2`` of circular kernels taken two patterns per complex map.

    Args:
        kernels: real ``(D, ..., H, W)``, zero offset at index ``[0, 0]``.

    Returns:
        complex ``(ceil(D / 2), ..., H, W)``: entry ``j`` is ``fft2(r[2j] + i r[2j+1])``
        (odd ``D``: the last pair's imaginary kernel is zero).
    """
    if kernels.shape[0] % 2:
        kernels = torch.cat([kernels, torch.zeros_like(kernels[:1])])
    return torch.fft.fft2(torch.complex(kernels[0::2], kernels[1::2]))


def lisa_spectral_paired(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p1: torch.Tensor,
                         p2: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """LiSA from paired kernel spectra (:func:`pair_spectra`): the path :class:`LiSA` runs.

    Equal to :func:`lisa_spectral` and :func:`lisa_spectral_broadcast` up to rounding
    (tested in values and gradients). For a pattern pair ``(d, e)``,
    ``z = ifft2(fft2(k) * P1[j])`` holds ``R1[d] (*) k`` in its real and ``R1[e] (*) k`` in
    its imaginary part, so ``sum_c q_c z_c = s_d + i s_e``; likewise
    ``w = ifft2(fft2(v) * P2[j])`` and ``y += s_d Re(w) + s_e Im(w)``.

    Without autograd (eager) the maps are processed in chunks of heads (or of channels of one
    head on large grids) whose spectra stay in cache (:data:`_PAIRED_CHUNK_BYTES`),
    all pattern pairs of a chunk in turn: at 640 px input the whole-layer tensors are
    2-13 MB per pattern and would stream through memory once per op.

    Args:
        q, k, v: ``(B, heads, dk, H, W)`` real.
        p1: ``(ceil(D / 2), dk, H, W)`` complex, :func:`pair_spectra` of R1.
        p2: ``(ceil(D / 2), H, W)`` complex, :func:`pair_spectra` of R2.
        eps: added inside the sqrt of the q/k L2 norms.

    Returns:
        ``(B, heads, dk, H, W)``.
    """
    if not torch.jit.is_scripting():  # (TorchScript, traces, compile: the whole-tensor form)
        if inference_forms_apply(q) and not (torch.is_grad_enabled() and (
                q.requires_grad or k.requires_grad or v.requires_grad or p1.requires_grad
                or p2.requires_grad)):
            return _paired_chunked(q, k, v, p1, p2, eps)
    return _paired_whole(_l2_normalise(q, eps), _l2_normalise(k, eps), v, p1, p2)


def _paired_whole(q, k, v, p1, p2):
    """The paired form on whole tensors (autograd, TorchScript: every op differentiable,
    no in-place op on a saved tensor)."""
    k_hat, v_hat = torch.fft.fft2(k), torch.fft.fft2(v)
    qr = q.unsqueeze(-1)
    y = torch.zeros(q.shape + (2,), dtype=q.dtype, device=q.device)
    for j in range(p1.shape[0]):
        s = (torch.view_as_real(torch.fft.ifft2(k_hat * p1[j])) * qr).sum(2, keepdim=True)
        y = y + torch.view_as_real(torch.fft.ifft2(v_hat * p2[j])) * s
    return y.sum(-1)


def _paired_chunked(q, k, v, p1, p2, eps: float):
    """The paired form chunk by chunk (inference: no autograd); q and k are normalised
    chunk by chunk too (same factors as :func:`_l2_normalise`)."""
    b, heads, dk, h, w = q.shape
    g = b * heads
    q, k, v = (t.reshape(g, dk, h, w) for t in (q, k, v))
    q_scale, k_scale = (torch.rsqrt(t.pow(2).sum(1, keepdim=True) + eps) for t in (q, k))
    # complex64 maps per chunk; each thread has its own L2, so the chunk grows with threads
    maps = max(1, _PAIRED_CHUNK_BYTES * torch.get_num_threads() // (h * w * 8))
    channels = min(dk, maps)
    groups = max(1, maps // dk) if channels == dk else 1
    s = torch.zeros((p1.shape[0], g, 1, h, w, 2), dtype=q.dtype, device=q.device)
    y = torch.empty_like(v)
    for g0 in range(0, g, groups):
        g1 = min(g, g0 + groups)
        for c0 in range(0, dk, channels):  # s_d + i s_e, summed over this chunk's channels
            c1 = min(dk, c0 + channels)
            k_hat = torch.fft.fft2(k[g0:g1, c0:c1] * k_scale[g0:g1])
            # q repeated for (re, im): a stride-0 last dim halves the product's speed
            qr = (q[g0:g1, c0:c1] * q_scale[g0:g1]).unsqueeze(-1).expand(-1, -1, -1, -1, 2)
            qr = qr.contiguous()
            for j in range(p1.shape[0]):
                z = torch.view_as_real(torch.fft.ifft2(k_hat * p1[j, c0:c1]))
                s[j, g0:g1] += (z * qr).sum(1, keepdim=True)
    for g0 in range(0, g, groups):
        g1 = min(g, g0 + groups)
        for c0 in range(0, dk, channels):
            c1 = min(dk, c0 + channels)
            v_hat = torch.fft.fft2(v[g0:g1, c0:c1])
            acc = torch.view_as_real(torch.fft.ifft2(v_hat * p2[0])) * s[0, g0:g1]
            for j in range(1, p2.shape[0]):
                acc.addcmul_(torch.view_as_real(torch.fft.ifft2(v_hat * p2[j])), s[j, g0:g1])
            torch.sum(acc, -1, out=y[g0:g1, c0:c1])
    return y.reshape(b, heads, dk, h, w)


def lisa_fft(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, r1: torch.Tensor,
             r2: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """LiSA with FFT circular convolutions, from spatial kernels.

    Args:
        q, k, v: ``(B, heads, dk, H, W)``.
        r1: ``(D, dk, H, W)`` circular kernels, zero offset at index ``[0, 0]``.
        r2: ``(D, H, W)`` circular kernels, zero offset at index ``[0, 0]``.
        eps: added inside the sqrt of the q/k L2 norms.

    Returns:
        ``(B, heads, dk, H, W)``, equal to :func:`lisa_reference` up to rounding.
    """
    return lisa_spectral(q, k, v, torch.fft.rfft2(r1), torch.fft.rfft2(r2), eps)


# Real DFT bases for ONNX export: the TorchScript exporter has no FFT ops and ONNX models
# take no complex tensors, so the export path writes each 1-D transform as a matmul with
# cos / sin matrices (exact DFT, O(N (H + W)) per map) on (real, imaginary) pairs.

def _dft_basis(n, m, device, dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` of ``2 pi j k / n`` for ``j < n``, ``k < m``, each ``(n, m)``.

    ``j k`` is reduced mod ``n`` in integers first, so the angle keeps float precision.
    ``n`` and ``m`` may be traced sizes (dynamic-axes export).
    """
    j = torch.arange(n, device=device)
    k = torch.arange(m, device=device)
    angle = ((j[:, None] * k[None, :]) % n).to(dtype) * (2 * math.pi / n)
    return torch.cos(angle), torch.sin(angle)


def _dft_bases(h, w, device, dtype) -> Tuple[torch.Tensor, ...]:
    """Bases of a 2-D real DFT on an ``h x w`` grid: H-axis cos/sin ``(h, h)``, W-axis
    forward cos/sin ``(w, w // 2 + 1)`` and W-axis inverse (Hermitian weights and the
    ``1 / (h w)`` folded in) ``(w // 2 + 1, w)``."""
    ch, sh = _dft_basis(h, h, device, dtype)
    cw, sw = _dft_basis(w, w // 2 + 1, device, dtype)
    k = torch.arange(w // 2 + 1, device=device)
    weight = torch.where((k == 0) | (2 * k == w), 1.0, 2.0).to(dtype) / (h * w)  # Hermitian pairs
    return ch, sh, cw, sw, (cw * weight).transpose(0, 1), (sw * weight).transpose(0, 1)


def rfft2_real(x: torch.Tensor, bases: Optional[Tuple[torch.Tensor, ...]] = None
               ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``torch.fft.rfft2(x)`` as ``(real, imag)``, each ``(..., H, W // 2 + 1)``, from matmuls.

    ``bases``: :func:`_dft_bases` of the grid, to share between calls.
    """
    ch, sh, cw, sw = (bases or _dft_bases(x.shape[-2], x.shape[-1], x.device, x.dtype))[:4]
    a, b = x @ cw, -(x @ sw)  # along W: sum_w x e^{-i theta}
    return ch @ a + sh @ b, ch @ b - sh @ a  # along H: (a + ib)(cos - i sin)


def irfft2_real(re: torch.Tensor, im: torch.Tensor, size,
                bases: Optional[Tuple[torch.Tensor, ...]] = None) -> torch.Tensor:
    """``torch.fft.irfft2(re + i im, s=size)`` from matmuls (imaginary DC / Nyquist ignored)."""
    ch, sh, _, _, cw_inv, sw_inv = bases or _dft_bases(size[0], size[1], re.device, re.dtype)
    a, b = ch @ re - sh @ im, ch @ im + sh @ re  # inverse along H (1 / (H W) is in cw_inv)
    return a @ cw_inv - b @ sw_inv


def _lisa_real_dft(q, k, v, r1, r2, eps):
    """LiSA in real arithmetic from circular spatial kernels: the ONNX export path.

    Same result as :func:`lisa_fft`; every transform is :func:`rfft2_real` /
    :func:`irfft2_real` with one set of bases for the grid.
    """
    size = (q.shape[-2], q.shape[-1])
    bases = _dft_bases(size[0], size[1], q.device, q.dtype)
    q, k = _l2_normalise(q, eps), _l2_normalise(k, eps)
    (r1_re, r1_im), (r2_re, r2_im) = rfft2_real(r1, bases), rfft2_real(r2, bases)
    k_re, k_im = rfft2_real(k, bases)
    k_re, k_im = k_re.unsqueeze(2), k_im.unsqueeze(2)  # (B, heads, 1, dk, H, Wf)
    k_conv = irfft2_real(k_re * r1_re - k_im * r1_im, k_re * r1_im + k_im * r1_re, size, bases)
    s = (q.unsqueeze(2) * k_conv).sum(3)
    v_re, v_im = rfft2_real(v, bases)
    v_re, v_im = v_re.unsqueeze(2), v_im.unsqueeze(2)
    r2_re, r2_im = r2_re[:, None], r2_im[:, None]
    v_conv = irfft2_real(v_re * r2_re - v_im * r2_im, v_re * r2_im + v_im * r2_re, size, bases)
    return (s.unsqueeze(3) * v_conv).sum(2)


def lisa_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, r1: torch.Tensor,
                   r2: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Direct O(N^2) LiSA (Eq. 11 and 10 with circulant RPE matrices): the test oracle.

    Same arguments and result as :func:`lisa_fft`. ``P[i, j] = R[(i - j) mod grid]``
    is the circulant matrix of a kernel; the Hadamard query-key correlation
    ``A[c, i, j] = q_hat[i, c] k_hat[j, c]`` is weighted by ``P1`` and summed over
    ``j`` and ``c`` to give ``s``, and ``y[i] = sum_d s[i, d] sum_j P2[d, i, j] v[j]``.
    """
    b, heads, dk, h, w = q.shape
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    yy, xx = yy.flatten(), xx.flatten()
    dy, dx = (yy[:, None] - yy[None, :]) % h, (xx[:, None] - xx[None, :]) % w
    p1, p2 = r1[..., dy, dx], r2[..., dy, dx]  # (D, dk, N, N), (D, N, N)
    q = _l2_normalise(q, eps).flatten(-2)
    k = _l2_normalise(k, eps).flatten(-2)
    corr = q[..., :, None] * k[..., None, :]  # (B, heads, dk, N, N) Hadamard correlation
    s = torch.einsum("bhcij,dcij->bhdi", corr, p1)
    v_conv = torch.einsum("dij,bhcj->bhdci", p2, v.flatten(-2))
    return torch.einsum("bhdi,bhdci->bhci", s, v_conv).reshape(b, heads, dk, h, w)


def _fft_flops(n: int) -> float:
    return 2.5 * n * math.log2(n) if n > 1 else 0.0


class LiSA(nn.Module):
    """Lightweight Structure-aware Attention on NCHW maps (qkv 1x1 -> LiSA -> proj 1x1).

    Args:
        dim: channels in and out.
        num_heads: heads; ``dim // num_heads`` channels each.
        num_patterns: ``D``, structural patterns.
        grid_size: token grid the kernels are stored (and trained) at.
        stride: input pixels per token.
        eps: added inside the sqrt of the q/k L2 norms.
        qkv_bias: bias in the qkv projection.
    """

    cache_size = 4  # kernel spectra kept per layer in eval mode (distinct grids)

    def __init__(self, dim: int, num_heads: int, num_patterns: int = 8,
                 grid_size: Tuple[int, int] = (14, 14), stride: int = 16, eps: float = 1e-6,
                 qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"LiSA: dim={dim} is not divisible by num_heads={num_heads}.")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.num_patterns = num_patterns
        self.grid_size = tuple(grid_size)
        self.stride = stride
        self.eps = eps
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=qkv_bias)
        # centred spatial kernels, shared across heads (spec: (dk + 1) * N * D parameters)
        self.r1 = nn.Parameter(torch.empty(num_patterns, self.head_dim, *self.grid_size))
        self.r2 = nn.Parameter(torch.empty(num_patterns, *self.grid_size))
        self.proj = nn.Conv2d(dim, dim, 1)
        trunc_normal_(self.r1, std=0.02)
        trunc_normal_(self.r2, std=0.02)
        self._cache = EvalCache(self.cache_size)

    def kernels(self, size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """R1 and R2 for a ``size`` grid, circular layout (zero offset at ``[0, 0]``)."""
        return tuple(circular_kernel(r, size) for r in (self.r1, self.r2))

    def _compute_spectra(self, size: Tuple[int, int], dtype: torch.dtype):
        return tuple(pair_spectra(r.to(dtype)) for r in self.kernels(size))

    def spectra(self, size: Tuple[int, int], device: torch.device, dtype: torch.dtype):
        """Paired spectra (:func:`pair_spectra`) of the kernels at ``size``; cached in eval mode
        when no gradient is needed."""
        params = (self.r1, self.r2)
        if not EvalCache.active(self, params):
            return self._compute_spectra(size, dtype)
        return self._cache.get((tuple(size), device, dtype), params, self._compute_spectra,
                               size, dtype)

    def train(self, mode: bool = True):
        self._cache.clear()
        return super().train(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv(x)
        if torch.jit.is_scripting():
            r1_hat, r2_hat = lisa_kernel_spectra(self.r1, self.r2, qkv)
        elif torch.onnx.is_in_onnx_export():
            return self.proj(self._attention_real_dft(qkv))
        else:
            r1_hat, r2_hat = self._spectra_for(qkv)
        return self.proj(lisa_attention(qkv, r1_hat, r2_hat, self.num_heads, self.eps))

    @torch.jit.unused
    def _attention_real_dft(self, qkv: torch.Tensor) -> torch.Tensor:
        # ONNX graphs take no FFT ops and no complex tensors: real DFT matmuls, kernels
        # resampled in the graph (the grid may be a dynamic axis), nothing cached
        b, c3, h, w = qkv.shape
        dtype = _fft_dtype(qkv.dtype)
        q, k, v = qkv.to(dtype).reshape(b, 3, self.num_heads, self.head_dim, h, w).unbind(1)
        r1, r2 = (circular_kernel(r, (h, w), always_sample=True).to(dtype)
                  for r in (self.r1, self.r2))
        y = _lisa_real_dft(q, k, v, r1, r2, self.eps)
        return y.reshape(b, c3 // 3, h, w).to(qkv.dtype)

    def _spectra_for(self, qkv: torch.Tensor):
        if isinstance(qkv, torch.fx.Proxy):  # a traced graph computes them at every call
            return lisa_kernel_spectra(self.r1, self.r2, qkv)
        return self.spectra(tuple(qkv.shape[-2:]), qkv.device, _fft_dtype(qkv.dtype))

    def extra_flops(self, h: int, w: int, elementwise: bool = False) -> int:
        """Real FLOPs ``FlopCounterMode`` does not see, per image on an ``h x w`` grid.

        With ``C`` channels, ``D`` patterns, ``N = h w`` and ``fft(N) = 2.5 N log2 N``
        real flops per real 2-D transform:
        ``(2 C + 2 C D) fft(N)`` (rfft2 of k and v, irfft2 of every channel-pattern
        pair) ``+ 4 C D N`` (the weighted sums over c and over d, 2 flops per
        multiply-add: the contractions an einsum form would show the counter).
        Element-wise products are not counted, as the counter counts none anywhere
        (LN, GELU, residuals); ``elementwise=True`` adds the complex spectral
        products, ``12 C D h (w // 2 + 1)``. Kernel spectra are weights (cached in
        eval) and are not counted.
        """
        c, d = self.num_heads * self.head_dim, self.num_patterns
        n = h * w
        flops = (2 * c + 2 * c * d) * _fft_flops(n) + 4 * c * d * n
        if elementwise:
            flops += 12 * c * d * h * (w // 2 + 1)
        return int(round(flops))


# --- blocks ------------------------------------------------------------------------

_ROW_STRIP_BYTES = 4 << 20  # hidden bytes per strip and thread (best of 1-8 MB, 1 thread, 640 px)


def _use_row_strips(training: bool, x: torch.Tensor) -> bool:
    """Eager inference (eval, no autograd, not traced, exported or compiled): the
    inference-only forms apply (their loops would bake sizes into a graph).

    Callers test ``not torch.jit.is_scripting()`` first (TorchScript keeps the plain path).
    """
    return not (training or torch.is_grad_enabled()) and inference_forms_apply(x)


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

    def __init__(self, dim: int, num_heads: int, grid_size: Tuple[int, int], stride: int,
                 mlp_ratio: float = 4.0, num_patterns: int = 8, drop_path: float = 0.0,
                 conv_pos: bool = True, conv_mlp: bool = True, eps: float = 1e-6):
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim) if conv_pos else None
        self.norm1 = LayerNorm2d(dim)
        self.attn = LiSA(dim, num_heads, num_patterns, grid_size, stride, eps)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = LayerNorm2d(dim)
        self.mlp = DwConvMlp(dim, int(dim * mlp_ratio), depthwise=conv_mlp)
        self.mlp_strips = conv_mlp  # inference runs the conv-MLP in row strips
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():  # (TorchScript compiles only the plain path)
            if _use_row_strips(self.training, x):
                return self._forward_inference(x)
        if self.pos_embed is not None:
            x = x + self.pos_embed(x)
        x = x + self.drop_path1(self.attn(self.norm1(x)))
        return x + self.drop_path2(self.mlp(self.norm2(x)))

    @torch.jit.unused
    def _forward_inference(self, x: torch.Tensor) -> torch.Tensor:
        # eval: DropPath is the identity; residuals added in place into the fresh branch
        # outputs (same sums), the conv-MLP in row strips
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
        self.norm = nn.BatchNorm2d(dim)
        self.pw1 = nn.Conv2d(dim, hidden, 1)
        self.act1 = nn.GELU()
        self.dw = nn.Conv2d(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden)
        self.act2 = nn.GELU()
        self.pw2 = nn.Conv2d(hidden, dim, 1)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():  # (TorchScript compiles only the plain path)
            if _use_row_strips(self.training, x):
                return self._forward_rows(x)
        y = self.pw2(self.act2(self.dw(self.act1(self.pw1(self.norm(x))))))
        return x + self.drop_path(y)

    @torch.jit.unused
    def _forward_rows(self, x: torch.Tensor) -> torch.Tensor:
        return residual_mlp_rows(x, self.norm, self.pw1, self.dw, self.pw2, gelu_first=True)

    @torch.no_grad()
    def fuse(self) -> "ConvBlock":
        """Fold the BatchNorm into the 1x1 conv after it (call in eval mode); returns self."""
        if isinstance(self.norm, nn.BatchNorm2d):
            _fold_bn_into_conv1x1(self.norm, self.pw1)
            self.norm = nn.Identity()
        return self


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
        stride: total stride of this stage's tokens.
        downsample: start with a stride-2 overlapping patch embedding.
        drop_path: per-block stochastic depth rates.
        conv_expansion, conv_kernel: conv block hidden width (x dim) and dw kernel.
        conv_pos, conv_mlp: LiSA block options (off for LiSANet-I).
    """

    def __init__(self, in_dim: int, dim: int, depth: int, block_type: str = "lisa",
                 num_heads: Optional[int] = None, grid_size: Tuple[int, int] = (14, 14),
                 stride: int = 16, mlp_ratio: float = 4.0, num_patterns: int = 8,
                 downsample: bool = True, drop_path: Sequence[float] = (),
                 conv_expansion: float = 6.0, conv_kernel: int = 3, conv_pos: bool = True,
                 conv_mlp: bool = True, eps: float = 1e-6):
        super().__init__()
        if block_type not in ("lisa", "conv"):
            raise ValueError(f"LiSAStage: block_type must be 'lisa' or 'conv', got {block_type!r}.")
        drop_path = list(drop_path) or [0.0] * depth
        self.downsample = OverlapPatchEmbed(in_dim, dim, 3, 2) if downsample else nn.Identity()
        if block_type == "lisa":
            blocks = [LiSABlock(dim, num_heads, grid_size, stride, mlp_ratio, num_patterns, dp,
                                conv_pos, conv_mlp, eps) for dp in drop_path]
        else:
            blocks = [ConvBlock(dim, conv_expansion, conv_kernel, dp) for dp in drop_path]
        self.blocks = nn.Sequential(*blocks)
        self.norm = LayerNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.blocks(self.downsample(x)))


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
        global_pool: ``'avg'`` or ``''`` (no pooling: with ``num_classes=0`` the model
            returns the (B, C, H, W) map).
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
                num_heads[i], (-(-img_h // stride), -(-img_w // stride)), stride, mlp_ratios[i],
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
            embed_dim, embed_dim, depth, "lisa", num_heads, grid, patch_size, mlp_ratio,
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
