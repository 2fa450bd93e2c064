"""LiSANet / HyLiSANet / LiSANet-I: operator, resolution handling, variants and contract."""
from __future__ import annotations

import math

import pytest
import timm
import torch
import torch.nn as nn

import lsdense  # noqa: F401  (registers the timm models)
from lsdense.models import create_backbone, list_backbones, load_checkpoint
from lsdense.models import lisa as LA
from lsdense.models import lisanet as L

# params and FLOPs against the paper: test_published.py (figures in the variant registry)
VARIANTS = sorted(list_backbones("lisanet") + list_backbones("hylisanet"))


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- the operator -------------------------------------------------------------------

def test_lisa_module_matches_reference_with_resized_kernels():
    torch.manual_seed(0)
    attn = LA.LiSA(8, num_heads=2, num_patterns=3, grid_size=(6, 5)).double().eval()
    x = torch.randn(2, 8, 7, 9, dtype=torch.float64)
    q, k, v = attn.qkv(x).reshape(2, 3, 2, 4, 7, 9).unbind(1)
    expected = attn.proj(LA.lisa_direct(q, k, v, *attn.kernels((7, 9))).reshape(2, 8, 7, 9))
    torch.testing.assert_close(attn(x), expected, rtol=1e-10, atol=1e-12)


# --- resolution ---------------------------------------------------------------------

def test_resize_kernel_identity_centre_and_sum():
    w = torch.randn(3, 2, 6, 6)
    assert LA.resize_kernel(w, (6, 6)) is w  # training grid: the parameter itself
    delta = torch.zeros(1, 6, 6)
    delta[0, 3, 3] = 1.0
    for size in [(9, 11), (12, 12), (4, 3)]:
        out = LA.resize_kernel(delta, size)
        assert out.shape == (1, *size)
        peak = divmod(int(out.flatten().argmax()), size[1])
        assert peak == (size[0] // 2, size[1] // 2)  # zero offset stays at zero offset
    const = torch.full((2, 6, 6), 0.5)
    out = LA.resize_kernel(const, (12, 9))
    torch.testing.assert_close(out.sum((-2, -1)), const.sum((-2, -1)))  # kernel sum kept


def test_kernel_spectra_cached_in_eval_only(monkeypatch):
    attn = LA.LiSA(8, num_heads=2, num_patterns=2, grid_size=(6, 6))
    calls = []
    original = LA.LiSA._compute_spectra

    def counting(self, size, dtype):
        calls.append(tuple(size))
        return original(self, size, dtype)

    monkeypatch.setattr(LA.LiSA, "_compute_spectra", counting)
    x = torch.randn(1, 8, 9, 11)
    r1_train_grid = attn.kernels((6, 6))[0]
    torch.testing.assert_close(r1_train_grid, torch.fft.ifftshift(attn.r1, dim=(-2, -1)))

    attn.eval()
    with torch.no_grad():
        y1 = attn(x)
        y2 = attn(x)
        assert calls == [(9, 11)]  # second call reused the cache
        attn(x[..., :6, :6])
        assert calls == [(9, 11), (6, 6)]  # one entry per grid
        torch.testing.assert_close(y1, y2)
        attn.r1.add_(0.1)  # in-place weight change invalidates
        y3 = attn(x)
        assert calls[-1] == (9, 11) and len(calls) == 3
        assert not torch.allclose(y1, y3)

    attn.train()
    assert not attn._cache
    attn(x)
    attn(x)
    assert len(calls) == 5  # training recomputes every call (and keeps the graph)
    attn.eval()
    attn(x).sum().backward()  # eval with gradients: not cached, kernels still get grads
    assert len(calls) == 6 and attn.r1.grad is not None and not attn._cache


# --- variants -----------------------------------------------------------------------

@pytest.mark.parametrize("name", VARIANTS)
def test_count_flops_adds_every_lisa_layer(name):
    """The one FLOP counter (lsdense.models.count_flops) adds LiSA.extra_flops of every
    LiSA layer at its own token grid to what FlopCounterMode sees."""
    from torch.utils.flop_counter import FlopCounterMode

    from lsdense.models import count_flops
    model = timm.create_model(name).eval()
    x = torch.randn(2, 3, 64, 48)
    counter = FlopCounterMode(display=False)
    grids = []
    hooks = [m.register_forward_hook(lambda m, i, o: grids.append((m, tuple(i[0].shape[-2:]))))
             for m in model.modules() if isinstance(m, LA.LiSA)]
    with torch.no_grad(), counter:
        model(x)
    for h in hooks:
        h.remove()
    # every stage's grid is ceil(64 / stride) x ceil(48 / stride), stride 4 (or 8, 16) to 32
    assert {g for _, g in grids} <= {(-(-64 // s), -(-48 // s)) for s in (4, 8, 16, 32)}
    want = 2 * sum(m.extra_flops(*g) for m, g in grids)
    assert grids and count_flops(model, x) - counter.get_total_flops() == want > 0


def test_extra_flops_formula():
    attn = LA.LiSA(32, num_heads=2, num_patterns=4, grid_size=(8, 8))
    c, d, n = 32, 4, 8 * 8
    assert attn.extra_flops(8, 8) == round((2 * c + 2 * c * d) * 2.5 * n * math.log2(n)
                                           + 4 * c * d * n)
    assert attn.extra_flops(8, 8, elementwise=True) == attn.extra_flops(8, 8) + 12 * c * d * 8 * 5


@pytest.mark.parametrize("d, kernel_params", [(1, 39_984), (4, 159_936), (8, 319_872),
                                              (16, 639_744)])
def test_lisanet_i_pattern_ablation(d, kernel_params):
    """Tab. 3(c): 5.72 M without R1/R2, +(dk + 1) N D per layer: 5.76 / 5.88 / 6.04 / 6.36 M."""
    model = L.LiSANetI(num_patterns=d)
    kernels = sum(p.numel() for n, p in model.named_parameters() if n.endswith((".r1", ".r2")))
    assert kernels == kernel_params == (16 + 1) * 14 * 14 * d * 12
    assert round((_num_params(model) - kernels) / 1e6, 2) == 5.72
    assert round(_num_params(model) / 1e6, 2) == {1: 5.76, 4: 5.88, 8: 6.04, 16: 6.36}[d]


# --- contract: tests/test_backbones.py (frozen stages, fuse, backward, bounds) ---------

def test_checkpoint_round_trip_with_kernel_resize(tmp_path):
    source = timm.create_model("lisanet_s", img_size=256).eval()
    path = tmp_path / "lisanet_s_256.pth"
    torch.save({"model": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)

    target = create_backbone("lisanet_s")  # kernels at the 224 grid (56, 28, 14, 7)
    result = load_checkpoint(target, path)
    kernel_keys = sorted(k for k in source.state_dict() if k.endswith((".r1", ".r2")))
    assert len(kernel_keys) == 2 * (2 + 4 + 12 + 4)
    assert sorted(result.resized_keys) == kernel_keys
    assert sorted(result.dropped_keys) == ["head.bias", "head.weight"]
    assert result.missing_keys == [] and result.unexpected_keys == []
    key = "stages.0.blocks.0.attn.r1"
    assert source.state_dict()[key].shape[-2:] == (64, 64)
    torch.testing.assert_close(target.state_dict()[key],
                               LA.resize_kernel(source.state_dict()[key], (56, 56)))

    # same grid: exact round trip, same outputs as the classifier's feature maps
    same = create_backbone("lisanet_s", img_size=256).eval()
    result = load_checkpoint(same, path)
    assert result.resized_keys == [] and result.missing_keys == []
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(same(x)[-1], source.forward_features(x))


def test_lisanet_i_pos_embed_resize_and_padding():
    source = L.LiSANetI(img_size=160)
    target = L.LiSANetI(img_size=224)
    result = load_checkpoint(target, source.state_dict())
    assert "stem.pos_embed" in result.resized_keys
    assert target.stem.pos_embed.shape[-2:] == (14, 14)
    assert len(result.resized_keys) == 1 + 2 * 12
    dense = create_backbone("lisanet_i").eval()
    with torch.no_grad():
        (out,) = dense(torch.randn(1, 3, 50, 70))
    assert out.shape == (1, 192, 4, 5)
