"""LSNet: golden outputs of the official implementation, SKA parity, weight loading."""
import importlib.util
from pathlib import Path

import pytest
import torch

from lsdense.models import create_backbone, load_checkpoint
from lsdense.models.lsnet import MODEL_ARGS, Attention, LSNet
from lsdense.models.ska import ska, ska_fast, ska_reference

GOLDEN = Path(__file__).parent / "golden"


def _detweights():
    spec = importlib.util.spec_from_file_location("detweights", GOLDEN / "detweights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def golden():
    return torch.load(GOLDEN / "lsnet_t_official_outputs.pt", weights_only=False)


def _rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("which", ["t_cls", "t_det"])
def test_golden_outputs(golden, which):
    """Same names/shapes as the official state dict and the same outputs (< 2e-5 rel)."""
    dw = _detweights()
    g = golden[which]
    if which == "t_cls":
        model = LSNet(**MODEL_ARGS["lsnet_t"])
    else:
        model = create_backbone("lsnet_t")
    model.eval()
    official = {k: tuple(s) for k, s in g["keys"] if not k.endswith("attention_bias_idxs")}
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == official
    sd = dw.deterministic_state_dict(g["keys"])
    res = load_checkpoint(model, sd, strict=True)
    assert res.missing_keys == [] and res.unexpected_keys == []
    with torch.no_grad():
        out = model(dw.fixed_input(g["input_shape"]))
    out = out if isinstance(out, tuple) else (out,)
    assert len(out) == len(g["outputs"])
    for o, r in zip(out, g["outputs"]):
        assert o.shape == r.shape
        assert _rel_err(o, r) < 2e-5


def test_golden_det_fused_and_cached(golden):
    """Fused model and the eval-mode bias cache keep the golden outputs."""
    dw = _detweights()
    g = golden["t_det"]
    model = create_backbone("lsnet_t", pretrained=dw.deterministic_state_dict(g["keys"])).eval()
    x = dw.fixed_input(g["input_shape"])
    with torch.no_grad():
        first = model(x)
        second = model(x)  # served from the bias cache
        fused = model.fuse()(x)
    for a, b, r in zip(first, second, g["outputs"]):
        assert torch.equal(a, b)
        assert _rel_err(a, r) < 2e-5
    for f, r in zip(fused, g["outputs"]):
        assert _rel_err(f, r) < 1e-3  # folding BN changes fp32 rounding (~1e-4)


def test_attention_bias_cache_invalidation(monkeypatch):
    """The bias cache follows LiSA's spectra cache (one EvalCache): eval without gradients
    only; a weight change, load_state_dict or train() recomputes; outputs stay bit-equal."""
    torch.manual_seed(0)
    attn = Attention(16, 4, num_heads=2, attn_ratio=2, resolution=4).eval()
    calls = []
    original = Attention._compute_bias

    def counting(self, h, w):
        calls.append((h, w))
        return original(self, h, w)

    monkeypatch.setattr(Attention, "_compute_bias", counting)
    x = torch.randn(1, 16, 6, 5)
    delta = torch.randn_like(attn.attention_biases)
    with torch.no_grad():
        attn.proj[1].bn.weight.fill_(1.0)  # zero-initialised: the output would be 0
        y1, y2 = attn(x), attn(x)
        assert calls == [(6, 5)] and torch.equal(y1, y2)
        attn.attention_biases.add_(delta)  # in-place change: recomputed
        y3 = attn(x)
        assert len(calls) == 2 and not torch.equal(y1, y3)
        sd = {k: v.clone() for k, v in attn.state_dict().items()}
        sd["attention_biases"] -= delta
        attn.load_state_dict(sd)  # loaded weights: recomputed, the first output again
        torch.testing.assert_close(attn(x), y1)
        assert len(calls) == 3
    attn(x).sum().backward()  # eval with gradients: not cached, the table gets its gradient
    assert len(calls) == 4 and attn.attention_biases.grad is not None
    attn.train()
    assert not len(attn._bias_cache)


@pytest.mark.parametrize("shape", [(2, 16, 7, 9), (1, 64, 12, 10), (3, 8, 1, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ska_fast_matches_reference(shape, dtype):
    b, c, h, w = shape
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    wt = torch.randn(b, c // 8, 9, h, w, dtype=dtype, requires_grad=True)
    ref = ska_reference(x, wt)
    fast = ska_fast(x, wt)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(fast, ref, atol=tol, rtol=tol)
    g = torch.randn_like(ref)
    gr = torch.autograd.grad(ref, (x, wt), g)
    gf = torch.autograd.grad(fast, (x, wt), g)
    for a, b_ in zip(gf, gr):
        torch.testing.assert_close(a, b_, atol=tol * 10, rtol=tol * 10)


def test_ska_gradcheck():
    x = torch.randn(1, 16, 4, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 2, 9, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ska_fast, (x, w))


def test_ska_interleaved_groups():
    """Channel c uses weight group c % G (official layout), checked on one pixel."""
    x = torch.randn(1, 16, 3, 3)
    w = torch.randn(1, 2, 9, 3, 3)
    out = ska(x, w)
    for c in range(16):
        expected = (x[0, c] * w[0, c % 2, :, 1, 1].view(3, 3)).sum()
        torch.testing.assert_close(out[0, c, 1, 1], expected)


def test_ska_falls_back_and_validates():
    x = torch.randn(1, 16, 4, 4, dtype=torch.float64)
    w = torch.randn(1, 2, 9, 4, 4, dtype=torch.float32)  # mixed dtypes: fast path not used
    assert ska(x, w).dtype == torch.float64
    with pytest.raises(ValueError, match="SKA"):
        ska(x, torch.randn(1, 3, 9, 4, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="impl"):
        ska(x.float(), w, impl="triton-please")


def _official_like_state_dict(model):
    """A state dict in the official layout (with attention_bias_idxs) for ``model``."""
    sd = dict(model.state_dict())
    for name, mod in model.named_modules():
        if hasattr(mod, "attention_bias_idxs"):
            sd[f"{name}.attention_bias_idxs"] = mod.attention_bias_idxs
    return sd


@pytest.mark.parametrize("wrap", ["raw", "model", "state_dict", "module", "backbone"])
def test_load_checkpoint_wrappings(tmp_path, wrap):
    src = LSNet(**MODEL_ARGS["lsnet_t"], num_classes=10)
    sd = _official_like_state_dict(src)
    if wrap == "module":
        sd = {"model": {f"module.{k}": v for k, v in sd.items()}}
    elif wrap == "backbone":
        sd = {"state_dict": {**{f"backbone.{k}": v for k, v in sd.items()},
                             "neck.fpn.weight": torch.zeros(1)}}
    elif wrap != "raw":
        sd = {wrap: sd, "epoch": 3}
    path = tmp_path / "ckpt.pth"
    torch.save(sd, path)
    dst = LSNet(**MODEL_ARGS["lsnet_t"], num_classes=10)
    res = load_checkpoint(dst, path)
    assert res.missing_keys == []
    assert res.unexpected_keys == (["neck.fpn.weight"] if wrap == "backbone" else [])
    assert any(k.endswith("attention_bias_idxs") for k in res.dropped_keys)
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k


def test_load_classification_into_dense_resizes_biases():
    """ImageNet weights (4x4 bias table) into the dense backbone (14x14): resized, heads dropped."""
    cls = LSNet(**MODEL_ARGS["lsnet_t"])
    det = create_backbone("lsnet_t")
    res = load_checkpoint(det, _official_like_state_dict(cls))
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert len([k for k in res.resized_keys if k.endswith("attention_biases")]) == 5
    assert "head.l.weight" in res.dropped_keys
    table = det.blocks4[3].mixer.m.attention_biases
    assert table.shape == (4, 196)


def test_distilled_heads_fold_exactly():
    torch.manual_seed(0)
    src = LSNet(**MODEL_ARGS["lsnet_t"], distillation=True).eval()
    for m in src.modules():  # non-trivial BN statistics in both heads
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
    dst = LSNet(**MODEL_ARGS["lsnet_t"]).eval()
    res = load_checkpoint(dst, src.state_dict())
    assert res.unexpected_keys == [] and res.missing_keys == []
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x), atol=1e-4, rtol=1e-4)


def test_checkpoint_that_matches_nothing(tmp_path):
    with pytest.raises(ValueError, match="matches no key"):
        load_checkpoint(create_backbone("lsnet_t"), {"foo.weight": torch.zeros(3)})
    with pytest.raises(FileNotFoundError, match="not found"):
        load_checkpoint(create_backbone("lsnet_t"), tmp_path / "missing.pth")


def test_checkpoint_mistakes_that_would_load_almost_nothing_are_refused(tmp_path):
    """Another variant's file (every name matches, no shape does), loading after fuse(), and
    empty or damaged files: each a ValueError naming the fix, not a silent partial load."""
    model = create_backbone("lsnet_t")
    with pytest.raises(ValueError, match="other shapes than .* another variant"):
        load_checkpoint(model, create_backbone("lsnet_s").state_dict())
    fused = create_backbone("lsnet_t").fuse()
    with pytest.raises(ValueError, match=r"was fused .* load the weights first, then call fuse"):
        load_checkpoint(fused, model.state_dict())
    load_checkpoint(model, create_backbone("lsnet_t").state_dict())  # the right file still loads
    empty, junk = tmp_path / "empty.pth", tmp_path / "junk.pth"
    empty.write_bytes(b"")
    junk.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ValueError, match="is empty"):
        load_checkpoint(model, empty)
    with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
        load_checkpoint(model, junk)
    damaged = tmp_path / "damaged.pth"  # a real file, truncated
    torch.save(model.state_dict(), tmp_path / "ok.pth")
    damaged.write_bytes((tmp_path / "ok.pth").read_bytes()[:5000])
    with pytest.raises((ValueError, RuntimeError)) as info:
        load_checkpoint(model, damaged)
    assert "trusted=True" not in str(info.value)  # damage is not a question of trust


def test_table_bias_mode_runs_and_differs():
    m1 = create_backbone("lsnet_t", out_indices=(3,)).eval()
    m2 = create_backbone("lsnet_t", out_indices=(3,), attn_bias_mode="table").eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in m1.parameters():  # zero-initialised BN scales would hide the bias
            p.normal_(0, 0.5)
    m2.load_state_dict(m1.state_dict())
    x = torch.randn(1, 3, 320, 256)
    with torch.no_grad():
        a, b = m1(x)[0], m2(x)[0]
    assert a.shape == b.shape == (1, 384, 5, 4)
    assert not torch.allclose(a, b)


def test_timm_pretrained_from_local_official_file(tmp_path):
    """timm's own pretrained path (pretrained_cfg file) with an official distilled checkpoint."""
    import timm
    src = LSNet(**MODEL_ARGS["lsnet_t"], distillation=True).eval()
    path = tmp_path / "lsnet_t_distill.pth"
    torch.save({"model": _official_like_state_dict(src), "epoch": 299}, path)
    model = timm.create_model("lsnet_t", pretrained=True,
                              pretrained_cfg_overlay=dict(file=str(path))).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x), src(x), atol=1e-4, rtol=1e-4)
    assert model.pretrained_cfg["hf_hub_id"] == "jameslahm/lsnet_t_distill"
