"""LiSA's forms against the equations: values and gradients.

* :func:`lisa_reference` (paired FFTs, whole tensors) against the O(N^2) :func:`lisa_direct`.
* :func:`lisa_fast` (cache-sized chunks) and :func:`lisa_export` (real DFT matmuls, rank
  <= 4) against :func:`lisa_reference`.
* :func:`circular_kernel` (resize sampled straight into circular order) against
  ``ifftshift(resize_kernel(...))``; the real DFTs against ``torch.fft``.
* The module forms (:class:`LiSAFast`, :class:`LiSAExport`, the row-strip blocks) against
  the reference modules, and their switch (``fuse()``, ``prepare_export``).
"""
from __future__ import annotations

import copy

import pytest
import torch

from lsdense.models import create_backbone
from lsdense.models import lisa as LA
from lsdense.models import lisanet as L
from lsdense.models.forms import forms_in, prepare_export, set_form


def _inputs(dtype, b=2, heads=3, dk=4, d=5, h=7, w=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, heads, dk, h, w, generator=g, dtype=dtype) for _ in range(3))
    r1 = torch.randn(d, dk, h, w, generator=g, dtype=dtype)
    r2 = torch.randn(d, h, w, generator=g, dtype=dtype)
    return [t.requires_grad_() for t in (q, k, v, r1, r2)]


def _reference(q, k, v, r1, r2, fn=LA.lisa_reference):
    return fn(q, k, v, LA.pair_spectra(r1), LA.pair_spectra(r2))


@pytest.mark.parametrize("h, w, d", [(7, 9, 5), (8, 6, 4), (1, 5, 2), (5, 7, 1)])
def test_reference_matches_direct_values_and_gradients(h, w, d):
    """Odd D (the last pair's imaginary kernel is zero), one-row grids; gradients reach
    q, k, v and the spatial kernels through pair_spectra."""
    inputs = _inputs(torch.float64, h=h, w=w, d=d)
    got, want = _reference(*inputs), LA.lisa_direct(*inputs)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    grad_out = torch.randn_like(want)
    g_got = torch.autograd.grad((got * grad_out).sum(), inputs)
    g_want = torch.autograd.grad((want * grad_out).sum(), inputs)
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("b, heads, dk, d, h, w", [
    (2, 3, 4, 5, 7, 9), (1, 2, 16, 8, 12, 10), (3, 1, 3, 1, 1, 5), (1, 2, 4, 2, 6, 1)])
@pytest.mark.parametrize("chunk_bytes", [1, 2 * 8 * 12 * 10, 3 * 4 * 8 * 12 * 10, 1 << 20])
def test_fast_matches_reference_in_chunks(monkeypatch, dtype, tol, b, heads, dk, d, h, w,
                                          chunk_bytes):
    """Single channels, part of a head, several heads with a partial last chunk, all at once."""
    monkeypatch.setattr(LA, "_CHUNK_BYTES", chunk_bytes)
    q, k, v, r1, r2 = (t.detach() for t in _inputs(dtype, b, heads, dk, d, h, w, seed=3))
    p1, p2 = LA.pair_spectra(r1), LA.pair_spectra(r2)
    assert p1.shape == ((d + 1) // 2, dk, h, w) and p2.shape == ((d + 1) // 2, h, w)
    got = LA.lisa_fast(q, k, v, p1, p2)
    want = LA.lisa_reference(q, k, v, p1, p2)
    assert (got - want).abs().max() <= tol * want.abs().max()


@pytest.mark.parametrize("h, w, d", [(7, 9, 5), (8, 6, 2), (1, 5, 3), (6, 1, 2)])
def test_export_matches_reference(h, w, d):
    """The export form on rank-4 tensors: (B, 3C, H, W) in, (B, C, H, W) out."""
    q, k, v, r1, r2 = (t.detach() for t in _inputs(torch.float64, h=h, w=w, d=d))
    b, heads, dk = q.shape[:3]
    qkv = torch.cat([t.reshape(b, heads * dk, h, w) for t in (q, k, v)], 1)
    got = LA.lisa_export(qkv, r1, r2, heads)
    want = _reference(q, k, v, r1, r2).reshape(b, heads * dk, h, w)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("size", [(6, 5), (9, 11), (4, 3), (12, 10), (7, 5)])
def test_circular_kernel_is_shifted_resize(size):
    w = torch.randn(3, 2, 6, 5, dtype=torch.float64)
    expected = torch.fft.ifftshift(LA.resize_kernel(w, size), dim=(-2, -1))
    torch.testing.assert_close(LA.circular_kernel(w, size), expected, rtol=0, atol=1e-14)
    # the export form's interpolation matrices (resampling even at the stored grid, (6, 5))
    torch.testing.assert_close(LA.circular_kernel_matrix(w, size), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("h, w", [(7, 10), (8, 9), (1, 4), (5, 1)])
def test_real_dft_matches_torch_fft(h, w):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, h, w, generator=g, dtype=torch.float64)
    re, im = LA.rfft2_real(x)
    spec = torch.fft.rfft2(x)
    torch.testing.assert_close(re, spec.real, rtol=0, atol=1e-12)
    torch.testing.assert_close(im, spec.imag, rtol=0, atol=1e-12)
    z = torch.randn(2, h, w // 2 + 1, generator=g, dtype=torch.complex128)
    torch.testing.assert_close(LA.irfft2_real(z.real, z.imag, (h, w)),
                               torch.fft.irfft2(z, s=(h, w)), rtol=0, atol=1e-12)


def test_module_forms_match_reference_and_fast_falls_back_under_autograd():
    torch.manual_seed(0)
    attn = LA.LiSA(8, num_heads=2, num_patterns=3, grid_size=(6, 5)).eval()
    x = torch.randn(2, 8, 7, 9)
    with torch.no_grad():
        want = attn(x)
        got = {form: set_form(copy.deepcopy(attn), form)(x) for form in ("fast", "export")}
    for form, y in got.items():
        assert (y - want).abs().max() <= 1e-5 * want.abs().max(), form
    fast = set_form(copy.deepcopy(attn), "fast")
    assert type(fast) is LA.LiSAFast
    fast(x.requires_grad_()).sum().backward()  # autograd: the reference path, gradients flow
    assert fast.r1.grad is not None and x.grad is not None


@pytest.mark.parametrize("block", ["conv", "lisa"])
@pytest.mark.parametrize("h, w", [(7, 5), (1, 6), (12, 9)])
@pytest.mark.parametrize("strip_bytes", [1, 3 * 24 * 9 * 4 * 4, 1 << 30])
def test_row_strips_match_whole_maps(monkeypatch, block, h, w, strip_bytes):
    """Conv block and LiSA block MLP in row strips (1 row, 3-4 rows with a partial last
    strip, one strip) equal the whole-map path; batch 2, odd sizes, one-row maps."""
    torch.manual_seed(0)
    m = (L.ConvBlock(4, expansion=6.0) if block == "conv" else
         L.LiSABlock(8, 2, (6, 6), mlp_ratio=3.0, num_patterns=2)).eval()
    if block == "conv":  # a BatchNorm that is not the identity
        m.norm.running_mean.normal_()
        m.norm.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 4 if block == "conv" else 8, h, w)
    monkeypatch.setattr(L, "_ROW_STRIP_BYTES", strip_bytes)
    calls = []
    rows = L.residual_mlp_rows
    monkeypatch.setattr(L, "residual_mlp_rows", lambda *a, **k: calls.append(1) or rows(*a, **k))
    with torch.no_grad():
        whole = m(x)
        assert not calls  # the reference form has no strips
        strips = set_form(m, "fast")(x)
    assert calls or block == "lisa" and not m.mlp_strips
    torch.testing.assert_close(strips, whole, rtol=1e-5, atol=1e-6)
    assert not torch.equal(whole, x)


def test_model_forms_agree_and_fuse_selects_fast():
    """A whole HyLiSANet-S (conv and LiSA stages): fuse() gives the fast form, prepare_export
    the export form, both within fp32 rounding of the reference."""
    torch.manual_seed(0)
    model = create_backbone("hylisanet_s").eval()
    x = torch.randn(1, 3, 96, 128)
    fused = copy.deepcopy(model).fuse()
    exported = prepare_export(copy.deepcopy(model))
    assert forms_in(model) == ("reference",)
    assert "fast" in forms_in(fused) and forms_in(exported) == ("export", "reference")
    with torch.no_grad():
        want = model(x)
        for other in (fused, exported):
            for a, b in zip(other(x), want):
                assert (a - b).abs().max() <= 1e-4 * b.abs().max()


def test_flop_count_of_a_fused_model_is_the_models():
    """count_flops counts the reference forms: a fused model's row strips (halo rows
    recomputed) do not change the count."""
    from lsdense.models import count_flops
    torch.manual_seed(0)
    block = L.LiSABlock(8, 2, (6, 6), mlp_ratio=3.0, num_patterns=2).eval()
    x = torch.randn(1, 8, 9, 7)
    fast = set_form(copy.deepcopy(block), "fast")
    assert count_flops(fast, x) == count_flops(block, x) > 0
    assert type(fast) is L.LiSABlockFast  # its form is back after counting


def test_fast_forms_refuse_tracing_with_the_fix():
    model = create_backbone("lisanet_s", depths=(1, 1, 1, 1)).eval().fuse()
    with pytest.raises(RuntimeError, match=r"prepare_export"):
        torch.jit.trace(model, torch.randn(1, 3, 64, 64))
