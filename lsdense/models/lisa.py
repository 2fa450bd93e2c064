"""LiSA, Lightweight Structure-aware Attention: the operator and its module.

Per head, on an H x W token grid (N = H W), ``dk`` channels per head, ``D`` structural
patterns (equations: :mod:`lsdense.models.lisanet`, ``specs/lisa.md``)::

    s[i, d] = sum_c q_hat[i, c] * (R1[d, c] (*) k_hat[:, c])[i]
    y[i, c] = sum_d s[i, d]     * (R2[d]    (*) v[:, c])[i]

with ``(*)`` a circular 2-D convolution over the whole grid.

Forms (:mod:`lsdense.models.forms`), each tested equal to :func:`lisa_direct`, the
equations evaluated directly in O(N^2) (the test oracle):

* :func:`lisa_reference` (:class:`LiSA`): circular convolutions by FFT, two patterns per
  complex transform (``x (*) r_d + i x (*) r_e`` from one ``ifft2``: torch's complex
  inverse FFT on CPU is several times faster per map than its real one), whole tensors;
  trains, scripts and compiles;
* :func:`lisa_fast` (:class:`LiSAFast`, eager inference): the same in chunks of heads or
  channels whose spectra stay in cache (at 640 px input the whole-layer tensors are
  2-13 MB per pattern and would stream through memory once per op);
* :func:`lisa_export` (:class:`LiSAExport`): real DFTs as matmuls with cos / sin bases
  (exact, O(N (H + W)) per map) on tensors of rank <= 4, kernels resampled in the graph:
  ONNX has no complex tensors and the TorchScript exporter no FFT ops, and ncnn / CoreML
  take no tensor of rank 5.
"""

import math
from typing import Optional, Tuple

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import trunc_normal_

from .forms import refuse_capture, register_forms
from .layers import EvalCache, bicubic_matrix, float_count

__all__ = ["LiSA", "LiSAFast", "LiSAExport", "lisa_direct", "lisa_reference", "lisa_fast",
           "lisa_export", "lisa_attention", "resize_kernel", "circular_kernel",
           "circular_kernel_matrix", "pair_spectra",
           "rfft2_real", "irfft2_real"]


# --- kernels at the input's grid ------------------------------------------------------

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


def _circular_offsets(n, n0: int, device, dtype) -> torch.Tensor:
    """Source index (into the 3x tiled centred kernel) of each tap of a circular ``n`` grid.

    Circular index ``i`` holds offset ``((i + n // 2) mod n) - n // 2``, the layout
    ``ifftshift`` gives; sampling these offsets directly folds the shift into the resize
    (no copy, and exportable for a traced ``n``).
    """
    i = torch.arange(n, device=device).to(dtype)
    nf = float_count(i)  # in floating point (traced export graphs, float_count)
    half = torch.floor(nf / 2)
    offset = torch.remainder(i + half, nf) - half
    return offset * n0 / nf + n0 // 2 + n0


def circular_kernel(kernel: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """``ifftshift(resize_kernel(kernel, size))`` in one step: zero offset at index ``[0, 0]``.

    Args:
        kernel: centred kernels ``(..., H0, W0)`` (zero offset at ``(H0 // 2, W0 // 2)``).
        size: ``(H, W)`` of the circular grid.

    Returns:
        ``(..., H, W)``; at the stored grid a ``roll`` of the kernel, otherwise one bicubic
        ``grid_sample`` whose sample grid is already in circular order, scaled by
        ``H0 W0 / (H W)`` as :func:`resize_kernel` does. The export form resamples with
        :func:`circular_kernel_matrix` instead.
    """
    (h0, w0), (h, w) = kernel.shape[-2:], size
    if (h0, w0) == (h, w):
        return torch.roll(kernel, (-(h0 // 2), -(w0 // 2)), (-2, -1))
    x = kernel.reshape(1, -1, h0, w0).repeat(1, 1, 3, 3)  # periodic copy around the kernel
    gy = _circular_offsets(h, h0, kernel.device, kernel.dtype) * (2.0 / (3 * h0 - 1)) - 1.0
    gx = _circular_offsets(w, w0, kernel.device, kernel.dtype) * (2.0 / (3 * w0 - 1)) - 1.0
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None]  # (1, H, W, 2)
    out = F.grid_sample(x, grid, mode="bicubic", padding_mode="border", align_corners=True)
    return out.reshape(kernel.shape[:-2] + out.shape[-2:]) * (h0 * w0 / (h * w))


def circular_kernel_matrix(kernel: torch.Tensor, size) -> torch.Tensor:
    """:func:`circular_kernel` as matmuls with bicubic interpolation matrices (the export
    form: no ``grid_sample``, which CoreML lacks in bicubic; ``size`` may be traced).

    The 3x tiled kernel's border taps read the kernel circularly (``wrap``), which equals
    the tiled ``grid_sample`` for stored grids of 4 taps or more (every tap of a sample
    lies inside the tiling).
    """
    h0, w0 = (int(n) for n in kernel.shape[-2:])
    ah = bicubic_matrix(_circular_offsets(size[0], h0, kernel.device, kernel.dtype), h0, wrap=True)
    aw = bicubic_matrix(_circular_offsets(size[1], w0, kernel.device, kernel.dtype), w0, wrap=True)
    scale = (h0 * w0) / float_count(ah[:, 0]) / float_count(aw[:, 0])  # H0 W0 / (H W)
    return ah @ kernel @ aw.transpose(0, 1) * scale


def _fft_dtype(dtype: torch.dtype) -> torch.dtype:
    # FFTs in float32 at least: half-precision cuFFT only takes power-of-two sizes
    return dtype if dtype == torch.float32 or dtype == torch.float64 else torch.float32


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


@torch.fx.wrap  # leaf call in torch.fx graphs (its size branch runs on real tensors)
def lisa_kernel_spectra(r1: torch.Tensor, r2: torch.Tensor,
                        qkv: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Paired spectra (:func:`pair_spectra`) of the centred kernels resized to ``qkv``'s
    grid, in its FFT dtype: the uncached path (TorchScript, ``torch.fx`` graphs);
    :meth:`LiSA.spectra` caches the same values in eval mode."""
    h, w = qkv.shape[-2], qkv.shape[-1]
    dtype = _fft_dtype(qkv.dtype)
    k1 = torch.fft.ifftshift(resize_kernel(r1, (h, w)), dim=(-2, -1))
    k2 = torch.fft.ifftshift(resize_kernel(r2, (h, w)), dim=(-2, -1))
    return pair_spectra(k1.to(dtype)), pair_spectra(k2.to(dtype))


# --- the operator ---------------------------------------------------------------------

def _l2_normalise(x: torch.Tensor, eps: float) -> torch.Tensor:
    # eps inside the sqrt (spec), channels are dim 2 of (B, heads, dk, H, W)
    return x * torch.rsqrt(x.pow(2).sum(2, keepdim=True) + eps)


def lisa_direct(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, r1: torch.Tensor,
                r2: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The equations evaluated directly in O(N^2) (Eq. 11 and 10 with circulant RPE
    matrices): the test oracle of every form.

    ``P[i, j] = R[(i - j) mod grid]`` is the circulant matrix of a kernel; the Hadamard
    query-key correlation ``A[c, i, j] = q_hat[i, c] k_hat[j, c]`` is weighted by ``P1``
    and summed over ``j`` and ``c`` to give ``s``, and ``y[i] = sum_d s[i, d] sum_j
    P2[d, i, j] v[j]``.

    Args:
        q, k, v: ``(B, heads, dk, H, W)``.
        r1: ``(D, dk, H, W)`` circular kernels, zero offset at index ``[0, 0]``.
        r2: ``(D, H, W)`` circular kernels, zero offset at index ``[0, 0]``.
        eps: added inside the sqrt of the q/k L2 norms.

    Returns:
        ``(B, heads, dk, H, W)``.
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


def lisa_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p1: torch.Tensor,
                   p2: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """LiSA by FFT from paired kernel spectra, on whole tensors (the reference form).

    For a pattern pair ``(d, e)``, ``z = ifft2(fft2(k) * P1[j])`` holds ``R1[d] (*) k`` in
    its real and ``R1[e] (*) k`` in its imaginary part, so ``sum_c q_c z_c = s_d + i s_e``;
    likewise ``w = ifft2(fft2(v) * P2[j])`` and ``y += s_d Re(w) + s_e Im(w)``. Every op is
    differentiable (no in-place op on a saved tensor).

    Args:
        q, k, v: ``(B, heads, dk, H, W)`` real.
        p1: ``(ceil(D / 2), dk, H, W)`` complex, :func:`pair_spectra` of R1.
        p2: ``(ceil(D / 2), H, W)`` complex, :func:`pair_spectra` of R2.
        eps: added inside the sqrt of the q/k L2 norms.

    Returns:
        ``(B, heads, dk, H, W)``.
    """
    q, k = _l2_normalise(q, eps), _l2_normalise(k, eps)
    k_hat, v_hat = torch.fft.fft2(k), torch.fft.fft2(v)
    qr = q.unsqueeze(-1)
    y = torch.zeros(q.shape + (2,), dtype=q.dtype, device=q.device)
    for j in range(p1.shape[0]):
        s = (torch.view_as_real(torch.fft.ifft2(k_hat * p1[j])) * qr).sum(2, keepdim=True)
        y = y + torch.view_as_real(torch.fft.ifft2(v_hat * p2[j])) * s
    return y.sum(-1)


_CHUNK_BYTES = 2 << 20  # spectrum bytes per chunk and thread (best of 0.5-4 MB, 1 thread)


def lisa_fast(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p1: torch.Tensor,
              p2: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """:func:`lisa_reference` chunk by chunk, for inference (no autograd: in-place ops).

    The maps are processed in chunks of heads (or of channels of one head on large grids)
    of :data:`_CHUNK_BYTES` per thread (each thread has its own L2), all pattern pairs of
    a chunk in turn; q and k are normalised chunk by chunk (the same factors).
    Same arguments and result as :func:`lisa_reference`.
    """
    b, heads, dk, h, w = q.shape
    g = b * heads
    q, k, v = (t.reshape(g, dk, h, w) for t in (q, k, v))
    q_scale, k_scale = (torch.rsqrt(t.pow(2).sum(1, keepdim=True) + eps) for t in (q, k))
    maps = max(1, _CHUNK_BYTES * torch.get_num_threads() // (h * w * 8))  # complex64 maps
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


def _heads(qkv: torch.Tensor, num_heads: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v ``(B, heads, dk, H, W)`` of the qkv projection's output, in its FFT dtype."""
    b, c3, h, w = qkv.shape
    c = c3 // 3
    q, k, v = qkv.to(_fft_dtype(qkv.dtype)).reshape(b, 3, num_heads, c // num_heads, h, w).unbind(1)
    return q, k, v


@torch.fx.wrap  # leaf call in torch.fx graphs (FFTs and dtype choice run on real tensors)
def lisa_attention(qkv: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor,
                   num_heads: int, eps: float) -> torch.Tensor:
    """LiSA (:func:`lisa_reference`) on the ``(B, 3C, H, W)`` output of the qkv projection:
    ``(B, C, H, W)``. ``p1``, ``p2``: paired kernel spectra (:func:`pair_spectra`) at
    ``qkv``'s grid."""
    q, k, v = _heads(qkv, num_heads)
    return lisa_reference(q, k, v, p1, p2, eps).reshape(v.shape[0], -1, v.shape[-2],
                                                        v.shape[-1]).to(qkv.dtype)


# --- the export form: real DFTs as matmuls, rank <= 4 ---------------------------------

def _dft_basis(n, m, device, dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` of ``2 pi j k / n`` for ``j < n``, ``k < m``, each ``(n, m)``.

    ``j k`` is reduced mod ``n`` first (exact in float32 below 2^24), so the angle keeps
    float precision; all in floating point (CoreML's converter takes no integer
    remainder or division). ``n`` and ``m`` may be traced sizes (dynamic-axes export).
    """
    j = torch.arange(n, device=device).to(dtype)
    k = torch.arange(m, device=device).to(dtype)
    nf = float_count(j)
    angle = torch.remainder(j[:, None] * k[None, :], nf) * (2 * math.pi) / nf
    return torch.cos(angle), torch.sin(angle)


def _dft_bases(h, w, device, dtype) -> Tuple[torch.Tensor, ...]:
    """Bases of a 2-D real DFT on an ``h x w`` grid: H-axis cos/sin ``(h, h)``, W-axis
    forward cos/sin ``(w, w // 2 + 1)`` and W-axis inverse (Hermitian weights and the
    ``1 / (h w)`` folded in) ``(w // 2 + 1, w)``."""
    ch, sh = _dft_basis(h, h, device, dtype)
    cw, sw = _dft_basis(w, w // 2 + 1, device, dtype)
    k = torch.arange(w // 2 + 1, device=device).to(dtype)
    hf, wf = float_count(ch[:, 0]), float_count(cw[:, 0])
    # DC and Nyquist appear once, the others twice (a sum of masks: CoreML has no bool or)
    edge = (k == 0).to(dtype) + (2 * k == wf).to(dtype)
    weight = (2.0 - edge) / (hf * wf)
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


def _l2_normalise_heads(x: torch.Tensor, num_heads: int, eps: float) -> torch.Tensor:
    """:func:`_l2_normalise` of a ``(B, C, H, W)`` map over each head's channels (rank 4)."""
    b, c, h, w = x.shape
    t = x.reshape(b, num_heads, c // num_heads, h * w)
    return (t * torch.rsqrt(t.pow(2).sum(2, keepdim=True) + eps)).reshape(b, c, h, w)


def lisa_export(qkv: torch.Tensor, r1: torch.Tensor, r2: torch.Tensor, num_heads: int,
                eps: float = 1e-6) -> torch.Tensor:
    """LiSA in real arithmetic on tensors of rank <= 4 (the export form).

    Args:
        qkv: ``(B, 3C, H, W)``, the qkv projection's output.
        r1: ``(D, dk, H, W)`` circular kernels at the grid, ``dk = C / num_heads`` (or the
            same flattened to ``(1, D dk, H, W)``).
        r2: ``(D, H, W)`` circular kernels at the grid (or ``(1, D, H, W)``).
        num_heads: heads.
        eps: added inside the sqrt of the q/k L2 norms.

    Returns:
        ``(B, C, H, W)``, equal to :func:`lisa_reference` up to float rounding.

    Every transform is :func:`rfft2_real` / :func:`irfft2_real` with one set of bases for
    the grid; R1 (shared by the heads) is concatenated ``num_heads`` times along channels,
    and the pattern sum is a loop over ``D`` (no ``(B, heads, D, dk, ...)`` tensor). The
    kernels are sliced along channels of a batch-1 map, never along dim 0: ncnn has no batch
    dimension and drops slices of it (measured: a segfaulting model).
    """
    b, c3, h, w = qkv.shape
    c = c3 // 3
    dk = c // num_heads
    size = (h, w)
    q, k, v = qkv.split(c, dim=1)
    q, k = _l2_normalise_heads(q, num_heads, eps), _l2_normalise_heads(k, num_heads, eps)
    bases = _dft_bases(h, w, qkv.device, qkv.dtype)
    k_re, k_im = rfft2_real(k, bases)  # (B, C, H, W // 2 + 1)
    v_re, v_im = rfft2_real(v, bases)
    r1_re, r1_im = rfft2_real(r1.reshape(1, -1, h, w), bases)  # (1, D dk, H, W // 2 + 1)
    r2_re, r2_im = rfft2_real(r2.reshape(1, -1, h, w), bases)  # (1, D, H, W // 2 + 1)
    y = torch.zeros_like(v).reshape(b, num_heads, dk, h * w)
    for d in range(r2_re.shape[1]):
        a_re, a_im = (torch.cat([t[:, d * dk:(d + 1) * dk]] * num_heads, 1)  # (1, C, H, Wf)
                      for t in (r1_re, r1_im))
        k_conv = irfft2_real(k_re * a_re - k_im * a_im, k_re * a_im + k_im * a_re, size, bases)
        s = (q * k_conv).reshape(b, num_heads, dk, h * w).sum(2, keepdim=True)
        b_re, b_im = r2_re[:, d:d + 1], r2_im[:, d:d + 1]
        v_conv = irfft2_real(v_re * b_re - v_im * b_im, v_re * b_im + v_im * b_re, size, bases)
        y = y + s * v_conv.reshape(b, num_heads, dk, h * w)
    return y.reshape(b, c, h, w)


def _fft_flops(n: int) -> float:
    return 2.5 * n * math.log2(n) if n > 1 else 0.0


# --- the module -----------------------------------------------------------------------

class LiSA(nn.Module):
    """Lightweight Structure-aware Attention on NCHW maps (qkv 1x1 -> LiSA -> proj 1x1).

    ``forward``: ``(B, C, H, W)`` -> ``(B, C, H, W)``, any ``H, W`` (the kernels are
    resized to the token grid, :func:`circular_kernel`). Forms: :class:`LiSAFast`,
    :class:`LiSAExport`.

    Args:
        dim: channels in and out.
        num_heads: heads; ``dim // num_heads`` channels each.
        num_patterns: ``D``, structural patterns.
        grid_size: token grid the kernels are stored (and trained) at.
        eps: added inside the sqrt of the q/k L2 norms.
        qkv_bias: bias in the qkv projection.

    Raises:
        ValueError: ``dim`` not divisible by ``num_heads``.
    """

    cache_size = 4  # kernel spectra kept per layer in eval mode (distinct grids)

    def __init__(self, dim: int, num_heads: int, num_patterns: int = 8,
                 grid_size: Tuple[int, int] = (14, 14), eps: float = 1e-6,
                 qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"LiSA: dim={dim} is not divisible by num_heads={num_heads}.")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.num_patterns = num_patterns
        self.grid_size = tuple(grid_size)
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
        if not torch.jit.is_scripting():
            refuse_capture(self, x)  # (complex FFTs: the export form is real, rank <= 4)
        qkv = self.qkv(x)
        if torch.jit.is_scripting():  # (no Python cache in TorchScript)
            p1, p2 = lisa_kernel_spectra(self.r1, self.r2, qkv)
        else:
            p1, p2 = self._spectra_for(qkv)
        return self.proj(lisa_attention(qkv, p1, p2, self.num_heads, self.eps))

    @torch.jit.unused
    def _spectra_for(self, qkv: torch.Tensor):
        if isinstance(qkv, torch.fx.Proxy):  # a traced graph computes them at every call
            return lisa_kernel_spectra(self.r1, self.r2, qkv)
        return self.spectra(tuple(qkv.shape[-2:]), qkv.device, _fft_dtype(qkv.dtype))

    def uncounted_flops(self, inputs: tuple, out: torch.Tensor) -> int:
        """FLOPs ``FlopCounterMode`` does not see in one call (:meth:`extra_flops` per image;
        :func:`lsdense.models.profiling.count_flops` adds them)."""
        x = inputs[0]
        return self.extra_flops(*x.shape[-2:]) * x.shape[0]

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


class LiSAFast(LiSA):
    """Fast form of :class:`LiSA`: :func:`lisa_fast` when no gradient is needed."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        refuse_capture(self, x)
        params = (self.r1, self.r2, self.qkv.weight)
        if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
            return super().forward(x)
        qkv = self.qkv(x)
        p1, p2 = self._spectra_for(qkv)
        q, k, v = _heads(qkv, self.num_heads)
        y = lisa_fast(q, k, v, p1, p2, self.eps)
        return self.proj(y.reshape(x.shape[0], -1, y.shape[-2], y.shape[-1]).to(qkv.dtype))


class LiSAExport(LiSA):
    """Export form of :class:`LiSA` (:func:`lisa_export`): kernels resampled in the graph
    at every call by :func:`circular_kernel_matrix` (the grid may be a dynamic axis; nothing
    cached), computed in float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv(x)
        h, w = qkv.shape[-2], qkv.shape[-1]
        dtype = _fft_dtype(qkv.dtype)
        # (1, D dk, H, W) and (1, D, H, W): no dim-0 slices for ncnn (lisa_export)
        r1, r2 = (circular_kernel_matrix(r.reshape((1, -1) + self.grid_size), (h, w)).to(dtype)
                  for r in (self.r1, self.r2))
        y = lisa_export(qkv.to(dtype), r1, r2, self.num_heads, self.eps)
        return self.proj(y.to(qkv.dtype))


register_forms(LiSA, fast=LiSAFast, export=LiSAExport)
