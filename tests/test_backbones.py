"""The backbone contract, checked over every registered variant (timm style)."""
import copy

import pytest
import timm
import torch
import torch.nn as nn

import lsdense  # noqa: F401  (registers the timm models)
from lsdense.models import create_backbone, get_variant, list_backbones, load_checkpoint

VARIANTS = list_backbones()  # the registry's names, each also a timm model name
ODD = (2, 3, 97, 131)  # odd, non-square, not divisible by 32 or 64


def _ceil_div(a, b):
    return -(-a // b)


@pytest.fixture(scope="module", params=VARIANTS)
def backbone(request):
    torch.manual_seed(0)
    return request.param, create_backbone(request.param)


def _family(name: str) -> str:
    return get_variant(name).family


# channels and strides of every level (feature_info), from the papers' stage tables:
# LSNet Tab. 1 (strides 8-64), LOLViT Tabs. 16 / 17 (2-32), LiSANet / HyLiSANet (4-32),
# LiSANet-I (12 blocks at stride 16, a level each, as timm's ViTs)
LEVELS = {
    "lsnet_t": ([64, 128, 256, 384], [8, 16, 32, 64]),
    "lsnet_s": ([96, 192, 320, 448], [8, 16, 32, 64]),
    "lsnet_b": ([128, 256, 384, 512], [8, 16, 32, 64]),
    "lolvit_s": ([32, 48, 64, 96, 128], [2, 4, 8, 16, 32]),
    "lolvit_x": ([32, 64, 96, 128, 192], [2, 4, 8, 16, 32]),
    "lisanet_s": ([64, 128, 320, 384], [4, 8, 16, 32]),
    "lisanet_b": ([96, 192, 384, 576], [4, 8, 16, 32]),
    "hylisanet_s": ([64, 128, 320, 384], [4, 8, 16, 32]),
    "hylisanet_b": ([96, 192, 384, 576], [4, 8, 16, 32]),
    "lisanet_i": ([192] * 12, [16] * 12),
}


def test_every_family_is_registered():
    assert set(VARIANTS) <= set(timm.list_models()), "import lsdense must register with timm"
    assert set(VARIANTS) == set(LEVELS)
    assert {_family(n) for n in VARIANTS} == {"lsnet", "lolvit", "lisanet", "hylisanet"}
    for family in ("lsnet", "lolvit", "lisanet", "hylisanet"):  # the registry is timm's list
        assert list_backbones(family) == sorted(
            n for n in timm.list_models(f"{family}*") if n in VARIANTS and _family(n) == family)


def test_levels_are_the_papers(backbone):
    name, model = backbone
    channels, strides = LEVELS[name]
    assert [f["num_chs"] for f in model.feature_info] == channels
    assert [f["reduction"] for f in model.feature_info] == strides
    assert model.out_channels == [channels[i] for i in model.out_indices]
    assert model.out_strides == [strides[i] for i in model.out_indices]
    assert isinstance(model.head, nn.Identity) or not hasattr(model.get_classifier(), "weight")


@pytest.mark.parametrize("name", VARIANTS)
def test_classification_any_input_size(name):
    """The timm model at an odd, non-square size: finite logits, every level ceil(size / s)."""
    model = timm.create_model(name).eval()
    x = torch.randn(1, 3, 97, 131)
    with torch.no_grad():
        logits = model(x)
        levels = model.forward_intermediates(x, intermediates_only=True)
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()
    channels, strides = LEVELS[name]
    assert [tuple(y.shape) for y in levels] == [
        (1, c, _ceil_div(97, s), _ceil_div(131, s)) for c, s in zip(channels, strides)]


def test_dense_forward_odd_size_matches_feature_info(backbone):
    name, model = backbone
    model.eval()
    with torch.no_grad():
        outs = model(torch.randn(ODD))
    assert isinstance(outs, tuple) and len(outs) == len(model.out_indices)
    for out, info in zip(outs, [model.feature_info[i] for i in model.out_indices]):
        r = info["reduction"]
        assert out.shape == (2, info["num_chs"], _ceil_div(97, r), _ceil_div(131, r)), name
        assert torch.isfinite(out).all()
    assert model.out_channels == [model.feature_info[i]["num_chs"] for i in model.out_indices]
    # every level by default; LiSANet-I (a level per block, as timm's ViTs): the last one
    n = len(model.feature_info)
    assert model.out_indices == ((n - 1,) if name == "lisanet_i" else tuple(range(n)))
    assert not hasattr(model.get_classifier(), "weight")  # no classifier in dense mode


@pytest.mark.parametrize("name", ["lsnet_t", "lolvit_s", "lisanet_s", "hylisanet_s"])
def test_bad_level_arguments(name):
    """Levels and freezing out of range, or a level twice, raise (the smallest variant of each
    family: each bad call builds the model first)."""
    model = create_backbone(name)
    n, units = len(model.feature_info), len(model._freeze_units())
    with pytest.raises(ValueError, match="out_indices|out of range"):
        create_backbone(name, out_indices=(n,))
    if n > 1:
        with pytest.raises(ValueError, match="out_indices"):
            create_backbone(name, out_indices=(1, 1))
    for k in (units, -2):
        with pytest.raises(ValueError, match="frozen_stages"):
            create_backbone(name, frozen_stages=k)


def test_batch_independence(backbone):
    """Each sample's features depend only on that sample (eval mode, any batch size)."""
    _, model = backbone
    model.eval()
    x = torch.randn(3, 3, 64, 96)
    with torch.no_grad():
        full = model(x)
        single = model(x[1:2])
    for a, b in zip(full, single):
        torch.testing.assert_close(a[1:2], b, atol=1e-4, rtol=1e-4)


def test_fuse_preserves_outputs(backbone):
    name, model = backbone
    model.eval()
    x = torch.randn(1, 3, 96, 128)
    fused = create_backbone(name)
    fused.load_state_dict(model.state_dict())
    with torch.no_grad():
        ref = model(x)
        out = fused.fuse()(x)
    assert not any(isinstance(m, nn.BatchNorm2d) and not _is_standalone_bn(fused, m)
                   for m in fused.modules()), "Conv-BN pairs left unfused"
    for a, b in zip(out, ref):
        assert ((a - b).abs().max() / b.abs().max().clamp_min(1e-6)) < 1e-3, name


def _is_standalone_bn(model, bn):
    """BatchNorms that follow a non-conv op (e.g. LSConv's ``bn`` after SKA) cannot be folded."""
    for mod in model.modules():
        if getattr(mod, "bn", None) is bn and not isinstance(getattr(mod, "c", None), nn.Conv2d):
            return True
        for attr in ("norm", "bn1", "bn2", "pre_norm"):
            if getattr(mod, attr, None) is bn:
                return True
    return not any(isinstance(getattr(mod, "c", None), nn.Conv2d) and getattr(mod, "bn", None) is bn
                   for mod in model.modules())


# frozen_stages=1 for every variant (0 for single-level ones: the stem only), and 2 for the
# families whose own tests froze two (LOLViT, HyLiSANet)
FROZEN_CASES = [(n, None) for n in VARIANTS] + [("lolvit_s", 2), ("hylisanet_s", 2)]


@pytest.mark.parametrize("name, k", FROZEN_CASES)
def test_frozen_stages_and_norm_eval(name, k):
    if k is None:
        k = 1 if len(create_backbone(name)._freeze_units()) > 2 else 0  # single-level: stem only
    model = create_backbone(name, frozen_stages=k, norm_eval=True)
    model.train()
    units = model._freeze_units()
    for unit in units[:k + 1]:
        assert all(not p.requires_grad for p in unit.parameters())
        assert not any(m.training for m in unit.modules())
    bn = nn.modules.batchnorm._BatchNorm
    # the rest trains, all but its BatchNorms (norm_eval); attention, LayerNorm, convs train
    assert all(m.training for u in units[k + 1:] for m in u.modules() if not isinstance(m, bn))
    trainable = [p for u in units[k + 1:] for p in u.parameters()]
    assert trainable and all(p.requires_grad for p in trainable)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert all(not m.training for m in bns)
    x = torch.randn(1, 3, 64, 64)
    sum(o.float().mean() for o in model(x)).backward()
    for unit in units[:k + 1]:
        assert all(p.grad is None for p in unit.parameters())
    assert any(p.grad is not None for p in trainable)
    assert all(p.grad is not None for p in units[-1].parameters())


@pytest.mark.parametrize("name", VARIANTS)
def test_classification_backward_every_parameter(name):
    """Every parameter gets a gradient (LiSA families with drop path 0.1, their recipe's);
    LOLViT's are all non-zero, its DReLu scalars included."""
    torch.manual_seed(0)
    kwargs = dict(drop_path_rate=0.1) if _family(name) in ("lisanet", "hylisanet") else {}
    model = timm.create_model(name, num_classes=7, **kwargs)
    model.train()
    out = model(torch.randn(2, 3, 64, 64))
    out = out[0] + out[1] if isinstance(out, tuple) else out
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    out.square().mean().backward()
    nonzero = _family(name) == "lolvit"  # drop path may drop a whole block for the batch
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (
        p.grad is None or (nonzero and not p.grad.abs().sum() > 0))]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"
    if _family(name) == "lolvit":
        assert all(blk.attn.drelu.dp.grad is not None for blk in
                   (dict(model.named_blocks())[f"lolvit{i}"].transformer[0] for i in (1, 2, 3)))


@pytest.mark.parametrize("name", VARIANTS)
def test_fuse_classification_model(name, randomize_bn):
    """``fuse()`` of the timm model, head included, with non-trivial BatchNorm statistics:
    outputs kept, every Conv-BN pair folded (LOLViT and HyLiSANet: no BatchNorm left; HyLiSANet
    keeps its LayerNorms)."""
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=10).eval()
    randomize_bn(model)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        ref = model(x)
        out = model.fuse()(x)
    assert not any(isinstance(m, nn.BatchNorm2d) and not _is_standalone_bn(model, m)
                   for m in model.modules()), "Conv-BN pairs left unfused"
    if _family(name) in ("lolvit", "hylisanet"):
        assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    if _family(name) == "hylisanet":
        assert any(isinstance(m, nn.LayerNorm) or "LayerNorm" in type(m).__name__
                   for m in model.modules())
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    assert (out - ref).abs().max() / ref.abs().max() < 1e-4, name


@pytest.mark.parametrize("name", [n for n in VARIANTS if n != "lisanet_i"])
def test_timm_features_only(name):
    model = timm.create_model(name, features_only=True, out_indices=(1, 2, 3)).eval()
    channels, strides = (v[1:4] for v in LEVELS[name])
    assert model.feature_info.channels() == channels and model.feature_info.reduction() == strides
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 96, 72))
    assert [tuple(f.shape) for f in feats] == [
        (1, c, _ceil_div(96, s), _ceil_div(72, s)) for c, s in zip(channels, strides)]


@pytest.mark.parametrize("name", VARIANTS)
def test_state_dict_round_trip(name, tmp_path):
    src = create_backbone(name)
    path = tmp_path / "w.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in src.state_dict().items()}}, path)
    dst = create_backbone(name, pretrained=str(path))
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k


@pytest.mark.parametrize("bad, exc, match", [
    (torch.randn(3, 64, 64), ValueError, "4-D"),
    (torch.randn(1, 1, 3, 64, 64), ValueError, "4-D"),
    (torch.randn(1, 4, 64, 64), ValueError, "in_chans"),
    (torch.randn(1, 3, 16, 16), ValueError, "too small"),
    (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), TypeError, "floating-point"),
    ([[1.0]], TypeError, "torch.Tensor"),
])
def test_bad_inputs(bad, exc, match):
    model = create_backbone("lsnet_t")
    with pytest.raises(exc, match=match):
        model(bad)


def test_bad_arguments():
    with pytest.raises(ValueError, match="Valid names: .*lsnet_t"):
        create_backbone("lsnet_q")
    with pytest.raises(ValueError, match="out of range"):
        create_backbone("lsnet_t", out_indices=(0, 4))
    with pytest.raises(ValueError, match="frozen_stages"):
        create_backbone("lsnet_t", frozen_stages=9)
    with pytest.raises(ValueError, match="matches no key"):
        load_checkpoint(create_backbone("lsnet_t"), {"x": torch.zeros(1)})


# --- pruning: one path for timm's prune_intermediate_layers and dense out_indices ---

SMALL = ("lsnet_t", "lolvit_s", "hylisanet_s")  # every subset kind; the rest: the common one


def _subsets(name):
    n = len(create_backbone(name).feature_info)
    if n == 1:
        return [(0,)]
    common = tuple(range(n - 1))  # all but the last level, e.g. mmdet's (0, 1, 2)
    return sorted({common, (0,), (n - 2,), (0, n - 2)}) if name in SMALL else [common]


PRUNE_CASES = [(name, oi) for name in VARIANTS for oi in _subsets(name)]


@pytest.mark.parametrize("name, out_indices", PRUNE_CASES,
                         ids=[f"{n}-{'_'.join(map(str, oi))}" for n, oi in PRUNE_CASES])
def test_out_indices_subset_prunes_unused_levels(name, out_indices):
    """Every parameter of a backbone with fewer levels gets a gradient (DDP needs it), the
    kept levels equal the full model's, and the pruned levels' weights leave the state dict."""
    torch.manual_seed(0)
    full = create_backbone(name).eval()
    pruned = create_backbone(name, out_indices=out_indices)
    missing, unexpected = pruned.load_state_dict(full.state_dict(), strict=False)
    assert not missing
    gone = tuple(f["module"] + "." for f in full.feature_info[max(out_indices) + 1:])
    assert sorted(unexpected) == sorted(k for k in full.state_dict() if gone and k.startswith(gone))
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        ref = full.forward_intermediates(x, indices=out_indices, intermediates_only=True)
        out = pruned.eval()(x)
    assert len(out) == len(out_indices)
    for o, r in zip(out, ref):
        torch.testing.assert_close(o, r, rtol=0, atol=0)
    pruned.train()
    sum(o.mean() for o in pruned(x)).backward()
    no_grad = [n for n, p in pruned.named_parameters() if p.grad is None]
    assert not no_grad, f"{name} {out_indices}: parameters without gradient: {no_grad[:5]}"


def test_pruned_backbone_is_smaller_and_loads_full_checkpoints():
    """LSNet-T levels 0-2 (166 tensors of blocks4 were gradient-less before pruning)."""
    full = create_backbone("lsnet_t")
    pruned = create_backbone("lsnet_t", out_indices=(0, 1, 2))
    n_full = sum(p.numel() for p in full.parameters())
    n_pruned = sum(p.numel() for p in pruned.parameters())
    assert len(list(full.blocks4.parameters())) == 166
    assert n_pruned == n_full - sum(p.numel() for p in full.blocks4.parameters())
    result = load_checkpoint(pruned, full.state_dict())
    assert not result.unexpected_keys and not result.missing_keys
    assert result.dropped_keys and all(k.startswith("blocks4.") for k in result.dropped_keys)


@pytest.mark.parametrize("name", ["lsnet_t", "lolvit_s", "lisanet_s", "hylisanet_s"])
def test_timm_features_only_prunes(name):
    """timm's features_only (FeatureGetterNet -> prune_intermediate_layers) keeps only what
    levels 0-1 need: every parameter gets a gradient, the maps equal the full model's."""
    torch.manual_seed(0)
    model = timm.create_model(name)
    full = sum(p.numel() for p in model.parameters())
    feats = timm.create_model(name, features_only=True, out_indices=(0, 1))
    feats.model.load_state_dict(model.state_dict(), strict=False)
    kept = sum(p.numel() for p in feats.parameters())
    assert kept < full / 3, f"{name}: {kept} of {full} parameters kept"
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model.eval().forward_intermediates(x, indices=(0, 1), intermediates_only=True)
        out = feats.eval()(x)
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    sum(o.mean() for o in feats.train()(x)).backward()
    assert all(p.grad is not None for p in feats.parameters())


@pytest.mark.parametrize("name", ["lsnet_t", "lolvit_s", "hylisanet_s", "lisanet_i"])
def test_prune_intermediate_layers_contract(name):
    """timm's contract: pruned taps equal the unpruned ones; the features end at the tap; the
    head goes; indices of pruned levels raise; head_hidden_size follows the last kept level."""
    torch.manual_seed(0)
    model = timm.create_model(name).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        taps = model.forward_intermediates(x, intermediates_only=True)
        for i in range(len(taps)):
            pruned = copy.deepcopy(model)
            take = pruned.prune_intermediate_layers([i])
            assert take == [i] and pruned.num_classes == 0
            assert pruned.head_hidden_size == pruned.num_features == taps[i].shape[1]
            torch.testing.assert_close(pruned.forward_features(x), taps[i], rtol=0, atol=0)
            torch.testing.assert_close(pruned(x), taps[i], rtol=0, atol=0)  # no pool, no head
            if i < len(taps) - 1:
                with pytest.raises(ValueError, match="pruned"):
                    pruned.forward_intermediates(x, indices=[i + 1])


# --- tracing and scripting (timm's suite runs them too: tests/test_timm_suite.py) ---

# the leaf functions: SKA and the LSNet bias, LiSA, the LiSANet-I position embedding
@pytest.mark.parametrize("name", ["lsnet_t", "hylisanet_s", "lisanet_i"])
def test_fx_feature_extraction_without_leaf_config(name):
    """Plain torch.fx and torchvision's create_feature_extractor (no leaf modules or autowrap
    lists) trace the models and match eager outputs; the friendly input errors stay eager."""
    from torchvision.models.feature_extraction import create_feature_extractor
    torch.manual_seed(0)
    model = timm.create_model(name).eval()
    x = torch.randn(1, 3, 96, 80)  # not the training grid: the size branches run in leaves
    with torch.no_grad():
        torch.testing.assert_close(torch.fx.symbolic_trace(model)(x), model(x))
        # graph nodes are module outputs: LiSANet-I's levels are its blocks' outputs before
        # the shared final norm that forward_intermediates applies (docs/timm.md)
        post = model.stages[0].norm if name == "lisanet_i" else nn.Identity()
        node = model.feature_info[-1]["module"]
        extractor = create_feature_extractor(model, return_nodes={node: "out"})
        torch.testing.assert_close(post(extractor(x)["out"]), model.forward_features(x))
        torch.manual_seed(0)  # the same weights as `model`
        fx_feats = timm.create_model(name, features_only=True, feature_cls="fx", out_indices=(0,))
        ref = model.forward_intermediates(x, indices=[0], intermediates_only=True)
        torch.testing.assert_close(post(fx_feats.eval()(x)[0]), ref[0])
    with pytest.raises(ValueError, match="in_chans"):
        model(torch.randn(1, 4, 96, 80))


def test_scripted_dense_backbone_raises():
    """TorchScript of the classification models runs in timm's suite (tests/test_timm_suite.py);
    a scripted dense backbone must not silently return one tensor instead of the tuple."""
    dense = torch.jit.script(create_backbone("lolvit_s"))
    with pytest.raises(torch.jit.Error, match="tuple of maps"):
        dense(torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize("name", ["lsnet_t", "lolvit_s", "lisanet_s", "lisanet_i"])
def test_timm_factory_device_dtype_and_heads(name):
    """create_model(device=, dtype=) and the meta device; reset_classifier follows the model's
    device/dtype/mode; global_pool='' keeps the map; no_weight_decay names real parameters."""
    with torch.device("meta"):
        meta = timm.create_model(name, device="meta", dtype=torch.float64)
    assert {p.device.type for p in meta.parameters()} == {"meta"}
    assert {p.dtype for p in meta.parameters()} == {torch.float64}
    model = timm.create_model(name, num_classes=0, global_pool="").double().eval()
    assert model.head_hidden_size == model.num_features
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    assert model(x).dim() == 4
    model.reset_classifier(5, "avg")
    head = model.get_classifier()
    assert {p.dtype for p in head.parameters()} == {torch.float64} and not head.training
    assert model(x).shape == (1, 5)
    with pytest.raises(ValueError, match="global_pool"):
        model.reset_classifier(5, "catavgmax")  # twice the width: not offered
    names = dict(model.named_parameters())
    no_decay = model.no_weight_decay()
    assert no_decay and no_decay <= set(names)
    kind = {"lsnet": "attention_biases", "lolvit": "drelu.dp"}.get(name.split("_")[0], "attn.r1")
    assert {n for n in names if kind in n} <= no_decay


# --- load-time adaptation (state-dict pre-hooks): plain load_state_dict resizes -------

@pytest.mark.parametrize("name,sizes", [("lsnet_t", (224, 896)), ("lisanet_s", (224, 160)),
                                        ("lisanet_i", (224, 320))])
def test_plain_load_state_dict_resizes_resolution_dependent_tensors(name, sizes):
    """A state dict saved at one img_size loads into a model built at another with
    torch's own load_state_dict (strict): the hooks resize the bias tables / LiSA kernels /
    position embedding to the values of the resize functions; load_checkpoint reports
    the same keys as resized."""
    from lsdense.models.lisanet import resize_kernel
    from lsdense.models.layers import resize_hw
    from lsdense.models.lsnet import resize_bias_table

    torch.manual_seed(0)
    src = timm.create_model(name, img_size=sizes[0])
    dst = timm.create_model(name, img_size=sizes[1])
    sd = src.state_dict()
    dst.load_state_dict(sd, strict=True)
    own = dst.state_dict()
    changed = sorted(k for k in sd if sd[k].shape != own[k].shape)
    assert changed  # the test exercises resizing
    for key in changed:
        if key.endswith("attention_biases"):
            want = resize_bias_table(sd[key], own[key].shape[1])
        elif key.endswith(("attn.r1", "attn.r2")):
            want = resize_kernel(sd[key], tuple(own[key].shape[-2:]))
        else:
            assert key.endswith("pos_embed"), key
            want = resize_hw(sd[key], tuple(own[key].shape[-2:]))
        assert torch.equal(own[key], want), key
    same = [k for k in sd if k not in changed]
    assert all(torch.equal(sd[k], own[k]) for k in same)
    result = load_checkpoint(timm.create_model(name, img_size=sizes[1]), sd)
    assert sorted(result.resized_keys) == changed and not result.unexpected_keys


def test_plain_load_state_dict_folds_distilled_head():
    """An official-layout distilled LSNet state dict (head + head_dist, bias index buffers)
    loads strictly into the single-head model; the folded head gives the distilled model's
    eval output."""
    torch.manual_seed(0)
    dist = timm.create_model("lsnet_t", distillation=True).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics in both heads
        for bn in (dist.head.bn, dist.head_dist.bn):
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
    sd = dict(dist.state_dict())
    idxs = {n: b for n, b in dist.named_buffers() if n.endswith("attention_bias_idxs")}
    assert idxs  # official files keep these (non-persistent here)
    sd.update(idxs)
    single = timm.create_model("lsnet_t").eval()
    single.load_state_dict(sd, strict=True)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(single(x), dist(x), rtol=1e-4, atol=1e-5)


def test_registry_answers_without_building(backbone):
    """get_variant(name) gives the built backbone's feature_info (channels, strides, module
    names) and default out_indices, computed from the variant's arguments."""
    from lsdense.models import get_variant
    name, model = backbone
    v = get_variant(name)
    assert [dict(f) for f in v.feature_info] == model.feature_info
    assert v.channels == [f["num_chs"] for f in model.feature_info]
    assert v.strides == [f["reduction"] for f in model.feature_info]
    assert v.modules == [f["module"] for f in model.feature_info]
    assert v.out_indices == model.out_indices
    for module in v.modules:
        model.get_submodule(module)  # a real module path
    assert isinstance(model, v.model_cls)


def test_eval_caches_do_not_break_torch_compile_graphs():
    """LSNet's bias and LiSA's spectra cache (one EvalCache) step aside under torch.compile:
    one graph, no breaks, the eager values."""
    from lsdense.models.lisanet import LiSA
    from lsdense.models.lsnet import Attention

    torch.manual_seed(0)
    for module, x in [(Attention(16, 4, num_heads=2, attn_ratio=2, resolution=4),
                       torch.randn(1, 16, 6, 5)),
                      (LiSA(16, num_heads=2, num_patterns=2, grid_size=(4, 4)),
                       torch.randn(1, 16, 6, 5))]:
        module.eval()
        with torch.no_grad():
            explained = torch._dynamo.explain(module)(x)
            assert explained.graph_count == 1 and explained.graph_break_count == 0
            torch.testing.assert_close(torch.compile(module, backend="eager")(x), module(x))
