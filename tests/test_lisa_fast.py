"""LiSA fast paths against their plain references: values and gradients.

* :func:`lisa_spectral_paired` (two patterns per complex transform, chunked without
  autograd: the path :class:`LiSA` runs) against :func:`lisa_spectral_broadcast`.
* :func:`lisa_spectral` (one pattern at a time, in-place accumulation) against
  :func:`lisa_spectral_broadcast` (all patterns in one broadcast: the form before the
  speed work) and the O(N^2) :func:`lisa_reference`.
* :func:`circular_kernel` (resize sampled straight into circular order) against
  ``ifftshift(resize_kernel(...))``.
* The ONNX export formulation (real DFT matmuls) against ``torch.fft``.
"""
from __future__ import annotations

import pytest
import torch

from lsdense.models import create_backbone
from lsdense.models import lisanet as L


def _inputs(dtype, b=2, heads=3, dk=4, d=5, h=7, w=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, heads, dk, h, w, generator=g, dtype=dtype) for _ in range(3))
    r1 = torch.randn(d, dk, h, w, generator=g, dtype=dtype)
    r2 = torch.randn(d, h, w, generator=g, dtype=dtype)
    return [t.requires_grad_() for t in (q, k, v, r1, r2)]


def _run(fn, q, k, v, r1, r2):
    return fn(q, k, v, torch.fft.rfft2(r1), torch.fft.rfft2(r2))


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
@pytest.mark.parametrize("h, w", [(7, 9), (8, 6), (1, 5)])
def test_pattern_loop_matches_broadcast_values_and_gradients(dtype, tol, h, w):
    inputs = _inputs(dtype, h=h, w=w)
    fast, plain = _run(L.lisa_spectral, *inputs), _run(L.lisa_spectral_broadcast, *inputs)
    scale = plain.abs().max()
    assert (fast - plain).abs().max() <= tol * scale
    grad_out = torch.randn_like(plain)
    g_fast = torch.autograd.grad((fast * grad_out).sum(), inputs)
    g_plain = torch.autograd.grad((plain * grad_out).sum(), inputs)
    for a, b in zip(g_fast, g_plain):
        assert (a - b).abs().max() <= tol * b.abs().max()
    if dtype == torch.float64:  # and both equal the direct O(N^2) equations
        torch.testing.assert_close(plain, L.lisa_reference(*inputs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("size", [(6, 5), (9, 11), (4, 3), (12, 10), (7, 5)])
def test_circular_kernel_is_shifted_resize(size):
    w = torch.randn(3, 2, 6, 5, dtype=torch.float64)
    expected = torch.fft.ifftshift(L.resize_kernel(w, size), dim=(-2, -1))
    torch.testing.assert_close(L.circular_kernel(w, size), expected, rtol=0, atol=1e-14)
    # the export path always resamples; bicubic at integer taps returns the taps
    torch.testing.assert_close(L.circular_kernel(w, size, always_sample=True), expected,
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("h, w", [(7, 10), (8, 9), (1, 4), (5, 1)])
def test_real_dft_matches_torch_fft(h, w):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, h, w, generator=g, dtype=torch.float64)
    re, im = L.rfft2_real(x)
    spec = torch.fft.rfft2(x)
    torch.testing.assert_close(re, spec.real, rtol=0, atol=1e-12)
    torch.testing.assert_close(im, spec.imag, rtol=0, atol=1e-12)
    z = torch.randn(2, h, w // 2 + 1, generator=g, dtype=torch.complex128)
    torch.testing.assert_close(L.irfft2_real(z.real, z.imag, (h, w)),
                               torch.fft.irfft2(z, s=(h, w)), rtol=0, atol=1e-12)


def test_export_formulation_matches_fft_path():
    q, k, v, r1, r2 = (t.detach() for t in _inputs(torch.float64))
    expected = _run(L.lisa_spectral, q, k, v, r1, r2)
    got = L._lisa_real_dft(q, k, v, r1, r2, 1e-6)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def _unpair(p):
    """rfft2 spectra of the kernels behind paired spectra (inverse of pair_spectra)."""
    r = torch.fft.ifft2(p)
    return torch.fft.rfft2(torch.stack((r.real, r.imag), 1).flatten(0, 1))


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("b, heads, dk, d, h, w", [
    (2, 3, 4, 5, 7, 9),  # odd D: the last pair's imaginary kernel is zero
    (1, 2, 16, 8, 12, 10), (3, 1, 3, 1, 1, 5), (1, 2, 4, 2, 6, 1)])
@pytest.mark.parametrize("chunk_bytes", [1, 2 * 8 * 12 * 10, 3 * 4 * 8 * 12 * 10, 1 << 20])
def test_paired_matches_broadcast_in_inference_chunks(monkeypatch, dtype, tol, b, heads, dk, d,
                                                      h, w, chunk_bytes):
    """Chunked paired form (no autograd): single channels, part of a head, several heads
    with a partial last chunk, everything at once; values against the broadcast form."""
    monkeypatch.setattr(L, "_PAIRED_CHUNK_BYTES", chunk_bytes)
    q, k, v, r1, r2 = (t.detach() for t in _inputs(dtype, b, heads, dk, d, h, w, seed=3))
    p1, p2 = L.pair_spectra(r1), L.pair_spectra(r2)
    assert p1.shape == ((d + 1) // 2, dk, h, w) and p2.shape == ((d + 1) // 2, h, w)
    with torch.no_grad():
        got = L.lisa_spectral_paired(q, k, v, p1, p2)
    plain = _run(L.lisa_spectral_broadcast, q, k, v, r1, r2)
    assert (got - plain).abs().max() <= tol * plain.abs().max()
    torch.testing.assert_close(_unpair(p1), torch.fft.rfft2(torch.cat([r1, 0 * r1[:1]])[:len(p1) * 2]))


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
@pytest.mark.parametrize("h, w, d", [(7, 9, 4), (8, 6, 3), (1, 5, 2)])
def test_paired_autograd_matches_broadcast_values_and_gradients(dtype, tol, h, w, d):
    """Training path: gradients reach q, k, v and the spatial kernels through pair_spectra."""
    inputs = _inputs(dtype, h=h, w=w, d=d)
    q, k, v, r1, r2 = inputs
    fast = L.lisa_spectral_paired(q, k, v, L.pair_spectra(r1), L.pair_spectra(r2))
    plain = _run(L.lisa_spectral_broadcast, *inputs)
    assert (fast - plain).abs().max() <= tol * plain.abs().max()
    with torch.no_grad():  # the chunked inference form gives the same values
        chunked = L.lisa_spectral_paired(q, k, v, L.pair_spectra(r1), L.pair_spectra(r2))
    assert (chunked - fast).abs().max() <= tol * plain.abs().max()
    grad_out = torch.randn_like(plain)
    g_fast = torch.autograd.grad((fast * grad_out).sum(), inputs)
    g_plain = torch.autograd.grad((plain * grad_out).sum(), inputs)
    for a, b in zip(g_fast, g_plain):
        assert (a - b).abs().max() <= tol * b.abs().max()


def test_model_outputs_equal_the_broadcast_path(monkeypatch):
    """A whole HyLiSANet-S (conv and LiSA stages) gives today's outputs within fp32 rounding."""
    torch.manual_seed(0)
    model = create_backbone("hylisanet_s").eval()
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        fast = model(x)
        monkeypatch.setattr(L, "lisa_spectral_paired", lambda q, k, v, p1, p2, eps: (
            L.lisa_spectral_broadcast(q, k, v, _unpair(p1), _unpair(p2), eps)))
        model.apply(lambda m: m._cache.clear() if isinstance(m, L.LiSA) else None)
        plain = model(x)
    for a, b in zip(fast, plain):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max()


@pytest.mark.parametrize("block", ["conv", "lisa"])
@pytest.mark.parametrize("h, w", [(7, 5), (1, 6), (12, 9)])
@pytest.mark.parametrize("strip_bytes", [1, 3 * 24 * 9 * 4 * 4, 1 << 30])
def test_row_strips_match_whole_maps(monkeypatch, block, h, w, strip_bytes):
    """Conv block and LiSA block MLP in row strips (1 row, 3-4 rows with a partial last
    strip, one strip) equal the whole-map path; batch 2, odd sizes, one-row maps."""
    torch.manual_seed(0)
    m = (L.ConvBlock(4, expansion=6.0) if block == "conv" else
         L.LiSABlock(8, 2, (6, 6), 16, mlp_ratio=3.0, num_patterns=2)).eval()
    if block == "conv":  # a BatchNorm that is not the identity
        m.norm.running_mean.normal_()
        m.norm.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 4 if block == "conv" else 8, h, w)
    monkeypatch.setattr(L, "_ROW_STRIP_BYTES", strip_bytes)
    with torch.no_grad():
        strips = m(x)
        monkeypatch.setattr(L, "_use_row_strips", lambda training, x: False)  # plain forward
        whole = m(x)
    torch.testing.assert_close(strips, whole, rtol=1e-5, atol=1e-6)
    assert not torch.equal(whole, x)


def test_fast_paths_switch_off_for_flop_counting(monkeypatch):
    """Under FlopCounterMode (count_flops; a dispatch mode) the plain forms run: the FLOP
    count is the model's, not the strips' halo recomputation."""
    from torch.utils.flop_counter import FlopCounterMode
    from lsdense.benchmark import count_flops
    torch.manual_seed(0)
    block = L.LiSABlock(8, 2, (6, 6), 16, mlp_ratio=3.0, num_patterns=2).eval()
    x = torch.randn(1, 8, 9, 7)
    monkeypatch.setattr(L, "_ROW_STRIP_BYTES", 1)  # one-row strips: 3x the dw/fc1 rows
    with torch.no_grad():
        strips = block(x)
    monkeypatch.setattr(L, "residual_mlp_rows", None)  # would raise if called
    monkeypatch.setattr(L, "_paired_chunked", None)
    with torch.no_grad(), FlopCounterMode(display=False):
        torch.testing.assert_close(block(x), strips, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError), torch.no_grad():  # outside the counter the strips run
        block(x)
    monkeypatch.undo()
    monkeypatch.setattr(L, "_ROW_STRIP_BYTES", 1)
    c_strips_allowed = count_flops(block, x)
    block.mlp_strips = False  # the plain MLP whatever the switch says
    assert count_flops(block, x) == c_strips_allowed
