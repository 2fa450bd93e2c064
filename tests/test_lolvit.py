"""LOLViT: parameter counts vs the paper, FAWA / DReLu / FWA vs literal loops,
key-sequence cache, any input size, dense / timm feature APIs, fuse, the fast inference
path vs the reference ops, freezing."""
import math

import pytest
import timm
import torch
import torch.nn as nn

from lsdense.models import create_backbone, get_variant, list_backbones, load_checkpoint
import copy

from lsdense.models import lolvit as L
from lsdense.models.forms import set_form
from lsdense.models.lolvit import DReLu, FAWA, FWAttention, LOLViT, LOLViTBlock, MODEL_ARGS


def set_fast_path(model, enabled):  # the reference ops of a fused model: its reference form
    return set_form(model, "fast" if enabled else "reference")

VARIANTS = sorted(MODEL_ARGS)

# Tables 16 / 17 of the paper (parameters per module, no classifier).
PAPER = {
    "lolvit_s": dict(stem=464, ghost1=2448, ghost2=6872, ghost3=6696, ghost4=17208,
                     lolvit1=163927, ghost5=30288, lolvit2=295703, ghost6=60528,
                     lolvit3=472535),
    "lolvit_x": dict(stem=928, ghost1=3440, ghost2=8160, ghost3=10976, ghost4=30288,
                     lolvit1=269943, ghost5=60528, lolvit2=468439, ghost6=109728,
                     lolvit3=900279),
}


def _numel(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --- parameter counts (tables 16 / 17) --------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_param_counts(variant):
    model = LOLViT(**MODEL_ARGS[variant], num_classes=0)
    blocks = dict(model.named_blocks())
    assert list(blocks) == list(PAPER[variant])
    for name, target in PAPER[variant].items():
        n = _numel(blocks[name])
        assert abs(n - target) / target < 0.05, f"{variant}.{name}: {n} vs paper {target}"
        if not name.startswith("lolvit"):  # the CNN part matches the tables exactly
            assert n == target, f"{variant}.{name}: {n} vs paper {target}"
    assert _numel(model) == sum(_numel(m) for m in blocks.values())
    # the tables' totals are the registry's published count (asserted against the model,
    # within 2 %, in test_published.py)
    assert sum(PAPER[variant].values()) == get_variant(variant).published.params


# --- FAWA / DReLu / FWA against literal loops (Eq. 2-4) ---------------------------

def _layer_norm_loop(vec, ln: nn.LayerNorm):
    mean = sum(vec) / len(vec)
    var = sum((v - mean) ** 2 for v in vec) / len(vec)
    return [(v - mean) / math.sqrt(var + ln.eps) * ln.weight[k].item() + ln.bias[k].item()
            for k, v in enumerate(vec)]


def _fawa_loop(seq, F, Pl, fold, ln):
    """Eq. 4 written out: w_i = sum_{j=i*Pl}^{(i+1)*Pl-1} sum_t d_{t*F+j}, then Fold,
    then divide by the number of summed tokens and LayerNorm."""
    N, D = len(seq), len(seq[0])
    windows = []  # (sum vector, token count) per Eq. 4 window
    for i in range(-(-F // Pl)):
        acc, cnt = [0.0] * D, 0
        for j in range(i * Pl, min((i + 1) * Pl, F)):
            for t in range(N // F):
                for k in range(D):
                    acc[k] += seq[t * F + j][k]
                cnt += 1
        windows.append((acc, cnt))
    keys = []
    for i in range(0, len(windows), fold):  # compress the key sequence by Fold
        acc, cnt = [0.0] * D, 0
        for s, c in windows[i:i + fold]:
            acc = [a + b for a, b in zip(acc, s)]
            cnt += c
        keys.append(_layer_norm_loop([a / cnt for a in acc], ln))
    return keys


@pytest.mark.parametrize("h,w,window,fold", [(3, 8, 1, 1), (3, 7, 1, 2), (2, 9, 2, 2),
                                             (4, 5, 1, 4), (1, 3, 2, 4)])
def test_fawa_matches_loop(h, w, window, fold):
    torch.manual_seed(0)
    b, d = 2, 6
    fawa = FAWA(d, window, fold)
    with torch.no_grad():
        fawa.norm.weight.uniform_(0.5, 1.5)
        fawa.norm.bias.normal_()
    x = torch.randn(b, h * w, d, dtype=torch.float64)
    out = fawa.double()(x, (h, w))
    assert out.shape == (b, -(-w // (window * fold)), d) and out.shape[1] == fawa.num_keys(w)
    for i in range(b):
        ref = torch.tensor(_fawa_loop(x[i].tolist(), w, window, fold, fawa.norm),
                           dtype=torch.float64)
        torch.testing.assert_close(out[i], ref, rtol=1e-6, atol=1e-6)


def test_drelu_matches_loop():
    torch.manual_seed(0)
    act = DReLu()
    assert act.dp.item() == 0.5  # Table 10
    with torch.no_grad():
        act.dp.fill_(0.37)
    x = torch.randn(2, 3, 4, 5)
    out = act(x)
    L = x.shape[-1]
    for idx in torch.cartesian_prod(*[torch.arange(s) for s in x.shape]).tolist():
        v = x[tuple(idx)].item()
        ref = max(v, 0.0) / ((0.37 + act.eps) * L)
        assert abs(out[tuple(idx)].item() - ref) < 1e-6


def test_fwa_matches_loop():
    """Eq. 2 per query, head and key, with K, V = Split(Conv(FAWA(Token)))."""
    torch.manual_seed(0)
    d, heads, h, w = 8, 2, 2, 5
    attn = FWAttention(d, heads, window=1, fold=2).double()
    x = torch.randn(1, h * w, d, dtype=torch.float64)
    out, cache = attn(x, (h, w))
    q, tok = attn.qt(x)[0].chunk(2, -1)
    keys = attn.fawa(tok[None], (h, w))[0]
    torch.testing.assert_close(cache[0], keys)
    k, v = attn.kv(keys).chunk(2, -1)
    hd, n, dp = d // heads, keys.shape[0], attn.drelu.dp.item()
    ref = torch.zeros(h * w, d, dtype=torch.float64)
    for qi in range(h * w):
        for hh in range(heads):
            sl = slice(hh * hd, (hh + 1) * hd)
            for ki in range(n):
                s = (q[qi, sl] @ k[ki, sl]).item() / math.sqrt(hd)
                ref[qi, sl] += max(s, 0.0) / ((dp + 1e-6) * n) * v[ki, sl]
    torch.testing.assert_close(out[0], attn.proj(ref), rtol=1e-6, atol=1e-6)


# --- key-sequence cache (Eq. 5) ---------------------------------------------------

def test_key_sequence_cache():
    torch.manual_seed(0)
    block = LOLViTBlock(16, 24, depth=3, num_heads=4, fold=2)
    layers = block.transformer
    assert layers[0].attn.first and hasattr(layers[0].attn, "fawa")
    assert all(not hasattr(l.attn, "fawa") and not hasattr(l.attn, "qt") for l in layers[1:])
    calls = []
    block.transformer[0].attn.fawa.register_forward_hook(lambda m, i, o: calls.append(o))
    seen = []
    for layer in layers[1:]:
        layer.attn.kv.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    # layer 1's own K, V are zero: FAWA can only get gradient through the cache
    with torch.no_grad():
        layers[0].attn.kv.weight.zero_()
        layers[0].attn.kv.bias.zero_()
    block(torch.randn(2, 16, 5, 7)).sum().backward()
    assert len(calls) == 1  # FAWA runs once per block forward
    assert len(seen) == 2 and all(s is calls[0] for s in seen)  # layers 2..L reuse it
    assert calls[0].shape == (2, 4, 24)  # ceil(7 / (1 * 2)) keys
    assert layers[0].attn.fawa.norm.weight.grad.abs().sum() > 0
    assert layers[0].attn.qt.weight.grad.abs().sum() > 0


# --- shapes, gradients, APIs (the contract over every variant: tests/test_backbones.py) ------------------------------------------------------

def test_patch_size_and_depth():
    """Patch p > 1 (MobileViT unfolding, resized to a multiple of p) and L > 1."""
    torch.manual_seed(0)
    model = LOLViT(**MODEL_ARGS["lolvit_s"], depths=(2, 2, 1), patch_sizes=(2, 2, 1),
                   num_classes=5).train()
    out = model(torch.randn(1, 3, 99, 77))
    out.sum().backward()
    assert out.shape == (1, 5) and torch.isfinite(out).all()
    assert all(p.grad is not None for p in model.parameters())


def test_checkpoint_classifier_to_dense():
    cls = timm.create_model("lolvit_s")
    dense = create_backbone("lolvit_s")
    res = load_checkpoint(dense, {"model": cls.state_dict()})
    assert not res.missing_keys and not res.unexpected_keys
    assert sorted(res.dropped_keys) == ["head.bias", "head.weight"]
    for k, v in dense.state_dict().items():
        assert torch.equal(v, cls.state_dict()[k])


# --- argument checks (freezing and levels: tests/test_backbones.py) ---------------

def test_bad_arguments():
    """Level and freezing bounds: tests/test_backbones.py::test_bad_level_arguments."""
    with pytest.raises(TypeError, match="unexpected"):
        LOLViT(**MODEL_ARGS["lolvit_s"], bogus=1)
    with pytest.raises(ValueError, match="too small"):
        create_backbone("lolvit_s")(torch.randn(1, 3, 16, 64))


# --- fast inference path vs the reference ops ---------------------------------------

def _count_fast_calls(monkeypatch):
    """Count calls of the fast paths (so that a parity test cannot pass by never taking them)."""
    calls = {"ghost": 0, "fwa": 0, "conv": 0}
    for cls, name, key in [(L.GhostBottleneck, "_forward_fast", "ghost"),
                           (L.FWALayer, "_forward_fast", "fwa")]:
        orig = getattr(cls, name)

        def wrapped(self, *a, _orig=orig, _key=key, **k):
            calls[_key] += 1
            return _orig(self, *a, **k)
        monkeypatch.setattr(cls, name, wrapped)
    orig_pw = L._dnn

    def dnn(*a, **k):
        calls["conv"] += 1
        return orig_pw(*a, **k)
    monkeypatch.setattr(L, "_dnn", dnn)
    return calls


@pytest.mark.skipif(not L._ONEDNN_OPS, reason="needs the oneDNN fused ops (x86 CPU build)")
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("train", [False, True])
def test_fast_path_matches_reference(fused, train, monkeypatch, randomize_bn):
    """The fast path (oneDNN fused convs, channels-last, split ghost concatenations, the
    folded FWA) equals the plain ops within float tolerance, at odd sizes, batch 2, with
    L > 1 and patch 2 (the cache layers, the unfolding); it runs only where it applies:
    the fast forms come with fuse(), the transformer's needs eval, and neither runs under
    autograd."""
    torch.manual_seed(0)
    model = LOLViT(**MODEL_ARGS["lolvit_s"], depths=(2, 1, 1), patch_sizes=(1, 2, 1),
                   dense=True).eval()
    randomize_bn(model)
    for m in model.modules():  # DReLu's DP may go negative in training: the divisor's sign
        if isinstance(m, DReLu):
            m.dp.data.fill_(-0.3)
            break
    if fused:
        model.fuse()
    model.train(train)
    ref = set_fast_path(copy.deepcopy(model), False)
    calls = _count_fast_calls(monkeypatch)
    for x in (torch.randn(2, 3, 97, 75), torch.randn(1, 3, 64, 130)):
        with torch.no_grad():
            torch.manual_seed(1)
            want = ref(x)
            torch.manual_seed(1)
            got = model(x)
        assert len(got) == len(want) == 5
        assert all(t.is_contiguous() for t in got[2:])  # LOLViTBlock maps leave in NCHW
        for a, b in zip(got, want):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item())
    expect_conv = fused  # (train mode after fuse: BN is gone, the convs stay fused)
    assert (calls["ghost"] > 0) == expect_conv and (calls["conv"] > 0) == expect_conv
    assert (calls["fwa"] > 0) == (fused and not train)
    # under autograd everything falls back to the reference ops (gradients flow)
    n = dict(calls)
    model(torch.randn(1, 3, 64, 64))[-1].sum().backward()
    assert calls == n
    assert model.stages[4].lolvit3.transformer[0].mlp.fc1.weight.grad is not None


@pytest.mark.skipif(not L._ONEDNN_OPS, reason="needs the oneDNN fused ops (x86 CPU build)")
@pytest.mark.parametrize("dp", [0.5, -0.3])
def test_fwa_layer_fast_matches_reference(dp):
    """The folded FWA layer alone (weights large enough for attention to dominate): first
    layer and a cache layer, a partial FAWA group (width 7, fold 2), DReLu's DP of either sign."""
    torch.manual_seed(0)
    block = LOLViTBlock(16, 24, depth=2, num_heads=4, fold=2).eval()
    for prm in block.transformer.parameters():
        prm.data.normal_(0, 0.3)
    for layer in block.transformer:
        layer.attn.drelu.dp.data.fill_(dp)
    x = torch.randn(2, 5 * 7, 24)
    with torch.no_grad():
        want, cache_ref = x, None
        got, cache = x, None
        for layer in block.transformer:
            want, cache_ref = L.FWALayer.forward(layer, want, (5, 7), cache_ref)
            got, cache = layer._forward_fast(got, (5, 7), cache)
            torch.testing.assert_close(cache, cache_ref, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


def test_fast_path_falls_back_without_onednn(monkeypatch):
    """Without the oneDNN ops (other CPU builds) or with mkldnn disabled, a fused model runs
    the plain ops and gives the same maps."""
    torch.manual_seed(0)
    model = create_backbone("lolvit_s", out_indices=(4,)).eval().fuse()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        want = set_fast_path(copy.deepcopy(model), False)(x)[0]
        calls = _count_fast_calls(monkeypatch)
        monkeypatch.setattr(L, "_ONEDNN_OPS", False)
        got = model(x)[0]
        monkeypatch.setattr(L, "_ONEDNN_OPS", True)
        with torch.backends.mkldnn.flags(enabled=False):
            got2 = model(x)[0]
    assert calls == {"ghost": 0, "fwa": 0, "conv": 0}
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(got2, want, rtol=1e-5, atol=1e-6)


def test_fast_path_counters_see_plain_ops():
    """FLOP counters (a dispatch mode: FlopCounterMode; module hooks: thop, as Ultralytics'
    get_flops uses) see the plain ops on a fused model: the same count as the reference."""
    from torch.utils.flop_counter import FlopCounterMode
    torch.manual_seed(0)
    model = create_backbone("lolvit_s").eval().fuse()
    ref = set_fast_path(copy.deepcopy(model), False)
    x = torch.randn(1, 3, 64, 96)
    counts = []
    for m in (model, ref):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            m(x)
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0
    seen = []
    hook = model.stages[0].ghost1.ghost1.primary_conv.conv.register_forward_hook(
        lambda m, i, o: seen.append(o.shape))
    with torch.no_grad():
        model(x)
    hook.remove()
    assert seen == [(1, 16, 32, 48)]  # ghost1: 16 -> 2 * 16, primary half: 16


def test_fused_model_scripts_and_fx_traces_in_export_form(randomize_bn):
    """A fused model in its export form works under TorchScript and torch.fx and matches the
    fast form in eager; the fast form itself refuses fx tracing with the fix."""
    torch.manual_seed(0)
    model = create_backbone("lolvit_s", out_indices=(2, 4)).eval()
    randomize_bn(model)
    model.fuse()
    x = torch.randn(1, 3, 96, 80)
    with pytest.raises(RuntimeError, match="prepare_export"):
        torch.fx.symbolic_trace(model)
    with torch.no_grad():
        want = model(x)
        got_fx = torch.fx.symbolic_trace(set_form(model, "export"))(x)
    for a, b in zip(got_fx, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    cls = timm.create_model("lolvit_s", num_classes=3).eval()
    randomize_bn(cls)
    cls.fuse()
    with torch.no_grad():
        want = cls(x)
    scripted = torch.jit.script(set_form(cls, "export"))
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), want, rtol=1e-4, atol=1e-5)


# --- ONNX export ------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("hw", [(96, 128), (96, 80)])
def test_onnx_export_parity(hw, tmp_path, randomize_bn):
    """TorchScript ONNX export (the path Ultralytics uses) runs in onnxruntime and matches.

    96x80 has level widths 5 and 3 under FAWA groups of 2 and 4: a partial last group
    and a width below the group size (ceil must give 3 and 1 keys, not floor/0)."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = create_backbone("lolvit_s").eval()
    randomize_bn(model)
    x = torch.randn(1, 3, *hw)
    with torch.no_grad():
        ref = model(x)
    f = str(tmp_path / "lolvit_s.onnx")
    torch.onnx.export(model, (x,), f, dynamo=False, opset_version=18, input_names=["x"])
    sess = ort.InferenceSession(f, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"x": x.numpy()})
    assert len(outs) == len(ref) == 5
    for r, o in zip(ref, outs):
        assert o.shape == tuple(r.shape)
        assert abs(torch.from_numpy(o) - r).max() / r.abs().max() < 1e-4
