"""The backbone arguments mmdet's / mmseg's configs pass, on every lsdense mm backbone, built
through the frameworks' own registries (issue 18): with_cp, norm_cfg (BN / SyncBN),
mmengine's efficient_conv_bn_eval, the deprecated pretrained, and one line for the rest."""
import copy
import warnings
from unittest import mock

import pytest
import torch
import torch.nn as nn
from mmengine.model import revert_sync_batchnorm
from mmengine.model.efficient_conv_bn_eval import turn_on_efficient_conv_bn_eval

import lsdense.mmdet  # noqa: F401  (registers the backbones with mmdet)
import lsdense.mmseg  # noqa: F401  (and with mmseg)

BLOCK_CLASSES = {"Block", "GhostBottleneck", "LOLViTBlock", "LiSABlock", "ConvBlock"}
BACKBONES = [("LSNetBackbone", "t"), ("LOLViTBackbone", "s"), ("HyLiSANetBackbone", "s"),
             ("LiSANetBackbone", "s"), ("LiSANetIBackbone", "i")]


def build(cfg, framework="mmdet"):
    """The backbone from the framework's MODELS registry (as its configs are built)."""
    if framework == "mmseg":
        from mmseg.registry import MODELS
    else:
        from mmdet.registry import MODELS
    return MODELS.build(cfg)


def _grads(model, x):
    model.zero_grad()
    sum(t.pow(2).mean() for t in model(x)).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("type_, arch", BACKBONES)
def test_with_cp_gives_the_same_gradients(type_, arch):
    """with_cp=True (activation checkpointing, as mmdet's ResNet / Swin): same outputs and
    gradients as the plain backbone, in training mode."""
    x = torch.randn(2, 3, 64, 64)
    torch.manual_seed(0)
    plain = build(dict(type=type_, arch=arch)).train()
    cp = build(dict(type=type_, arch=arch, with_cp=True)).train()
    cp.load_state_dict(plain.state_dict())
    assert cp.with_cp and cp.grad_checkpointing and not plain.grad_checkpointing
    g_plain = _grads(plain, x)
    calls = []
    original = torch.utils.checkpoint.checkpoint

    def counting(fn, *args, **kwargs):
        calls.append(fn)
        return original(fn, *args, **kwargs)

    with mock.patch("torch.utils.checkpoint.checkpoint", counting):
        g_cp = _grads(cp, x)
    blocks = [m for m in cp.modules() if type(m).__name__ in BLOCK_CLASSES]
    assert len(calls) >= len(blocks) > 1  # per block, not per stage
    assert g_plain.keys() == g_cp.keys() and len(g_plain) == len(list(plain.parameters()))
    for k in g_plain:
        torch.testing.assert_close(g_cp[k], g_plain[k], rtol=0, atol=0)


@pytest.mark.parametrize("type_, arch", BACKBONES)
def test_norm_cfg_syncbn_and_frozen_bn(type_, arch):
    """norm_cfg=dict(type='SyncBN') builds mmengine's SyncBatchNorm (mmcv build_norm_layer, as
    mmseg's backbones); eval outputs are unchanged; mmengine's runner reverts it outside
    distributed runs, after which it trains on CPU. requires_grad=False freezes every BN."""
    x = torch.randn(2, 3, 64, 64)
    torch.manual_seed(0)
    plain = build(dict(type=type_, arch=arch)).eval()
    sync = build(dict(type=type_, arch=arch, norm_cfg=dict(type="SyncBN", requires_grad=True)),
                 "mmseg")
    sync.load_state_dict(plain.state_dict())
    bns = [m for m in plain.modules() if isinstance(m, nn.BatchNorm2d)]
    syncs = [m for m in sync.modules() if isinstance(m, nn.SyncBatchNorm)]
    assert len(syncs) == len(bns)  # LiSANet: none (LayerNorm only)
    with torch.no_grad():
        for a, b in zip(sync.eval()(x), plain(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    reverted = revert_sync_batchnorm(sync).train()
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in reverted.modules())
    _grads(reverted, x)
    frozen = build(dict(type=type_, arch=arch, norm_eval=True,
                        norm_cfg=dict(type="BN", requires_grad=False, eps=1e-3)))
    bn_params = [p for m in frozen.modules() if isinstance(m, nn.BatchNorm2d)
                 for p in m.parameters()]
    assert all(not p.requires_grad for p in bn_params)
    assert {m.eps for m in frozen.modules() if isinstance(m, nn.BatchNorm2d)} <= {1e-3}


def test_norm_cfg_of_another_kind_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"LSNetBackbone: norm_cfg=\{'type': 'GN', 'num_groups': "
                                         r"32\} is not supported: its norm layers are BatchNorm"):
        build(dict(type="LSNetBackbone", arch="t", norm_cfg=dict(type="GN", num_groups=32)))


@pytest.mark.parametrize("type_, arch", BACKBONES)
def test_efficient_conv_bn_eval(type_, arch):
    """mmengine's efficient_conv_bn_eval=['backbone'] (the runner calls this function): it
    traces the backbone with torch.fx (LSNet failed with KeyError(<function ska>)) and
    the outputs stay equal."""
    x = torch.randn(1, 3, 64, 64)
    torch.manual_seed(0)
    holder = nn.Module()
    holder.backbone = build(dict(type=type_, arch=arch, norm_eval=True)).eval()
    ref = copy.deepcopy(holder.backbone)
    turn_on_efficient_conv_bn_eval(holder, ["backbone"])
    with torch.no_grad():
        for a, b in zip(holder.backbone(x), ref(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_other_mm_backbone_arguments():
    """pretrained (deprecated in mm) becomes init_cfg with a warning, as mmdet's ResNet does;
    in_channels; zero drop rates; another backbone's arguments: one line with _delete_=True."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build(dict(type="LOLViTBackbone", arch="s", pretrained="lolvit_s.pth"))
    assert model.init_cfg == dict(type="Pretrained", checkpoint="lolvit_s.pth")
    assert any("pretrained is deprecated" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match="give init_cfg or pretrained, not both"):
        build(dict(type="LOLViTBackbone", pretrained="a.pth", init_cfg=dict(type="Pretrained",
                                                                            checkpoint="a.pth")))
    gray = build(dict(type="LSNetBackbone", arch="t", in_channels=1, drop_rate=0.0,
                      attn_drop_rate=0.0))
    assert gray.in_chans == 1 and len(gray.eval()(torch.randn(1, 1, 64, 64))) == 4
    with pytest.raises(ValueError, match=r"attn_drop_rate=0.1 is not supported: these "
                                         r"backbones have no dropout inside; use drop_path_rate"):
        build(dict(type="HyLiSANetBackbone", attn_drop_rate=0.1))
    # a ResNet config whose backbone type was switched without _delete_=True
    with pytest.raises(TypeError) as info:
        build(dict(type="LSNetBackbone", arch="t", depth=50, num_stages=4, style="pytorch",
                   out_indices=(0, 1, 2, 3), frozen_stages=1, norm_eval=True, with_cp=False,
                   norm_cfg=dict(type="BN", requires_grad=True)))
    assert info.value.args[0].endswith(
        "LSNetBackbone got unexpected argument(s) ['depth', 'num_stages', 'style']; it takes arch, "
        "out_indices, frozen_stages, norm_eval, drop_path_rate, ska_impl, attn_bias_mode, "
        "init_cfg, with_cp, norm_cfg, pretrained, in_channels, drop_rate, attn_drop_rate. depth, "
        "num_stages, style set another backbone's architecture (here arch= does): if the config "
        "inherits a base config's backbone, replace it with dict(_delete_=True, "
        "type='LSNetBackbone', ...).")


@pytest.mark.parametrize("type_, arch, part", [("LSNetBackbone", "t", "backbone.blocks4"),
                                               ("HyLiSANetBackbone", "s", "backbone.stages.2")])
def test_mmengine_activation_checkpointing_on_backbone_parts(type_, arch, part):
    """The runner option activation_checkpointing=[part] (mmengine wraps the part's forward in
    torch.utils.checkpoint): the same gradients as without it."""
    from mmengine.runner.activation_checkpointing import turn_on_activation_checkpointing

    x = torch.randn(2, 3, 64, 64)
    holder = nn.Module()
    holder.backbone = build(dict(type=type_, arch=arch)).train()
    ref = copy.deepcopy(holder.backbone)
    turn_on_activation_checkpointing(holder, [part])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch asks mmengine to pass use_reentrant
        got = _grads(holder.backbone, x)
    want = _grads(ref, x)
    assert got.keys() == want.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=0)
