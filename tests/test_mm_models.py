"""MMDetection / MMSegmentation adapters: every config builds and runs, the backbone
contract holds inside mm models, weights load through lsdense's loader.

CPU, small images (the configs' own image scales are only overridden here).
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("mmdet")
pytest.importorskip("mmseg")

from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import lsdense.mmdet  # noqa: E402,F401  (registers in mmdet)
import lsdense.mmseg  # noqa: E402,F401  (registers in mmseg)
from lsdense.mm.backbones import (HyLiSANetBackbone, LiSANetBackbone, LiSANetIBackbone,  # noqa: E402
                                  LOLViTBackbone, LSNetBackbone)
from lsdense.mm.checks import check_neck_channels  # noqa: E402
from lsdense.mm.necks import LSNetFPN  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(glob.glob(str(ROOT / "configs" / "*.py"))) + \
    sorted(glob.glob(str(ROOT / "configs" / "quickstart" / "*.py")))
PAPER_CONFIGS = sorted(glob.glob(str(ROOT / "configs" / "*.py")))


def _registry(scope: str):
    init_default_scope(scope)
    if scope == "mmdet":
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    return MODELS


def _build(cfg):
    return _registry(cfg.default_scope).build(cfg.model)


def _det_batch(model, with_mask: bool, size=(160, 192)):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData

    torch.manual_seed(0)
    h, w = size
    samples = []
    inputs = []
    for i in range(2):
        inputs.append(torch.randint(0, 255, (3, h, w), dtype=torch.uint8))
        s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                        scale_factor=(1.0, 1.0), img_id=i, img_path=f"{i}.jpg"))
        gt = InstanceData()
        gt.bboxes = torch.tensor([[10.0, 20.0, 80.0, 90.0], [60.0, 40.0, 150.0, 150.0]])
        gt.labels = torch.tensor([0, 1])
        if with_mask:
            m = torch.zeros(2, h, w, dtype=torch.uint8)
            m[0, 20:90, 10:80] = 1
            m[1, 40:150, 60:150] = 1
            gt.masks = BitmapMasks(m.numpy(), h, w)
        s.gt_instances = gt
        samples.append(s)
    return model.data_preprocessor({"inputs": inputs, "data_samples": samples}, training=True)


def _seg_batch(model, size=(128, 160)):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    torch.manual_seed(0)
    h, w = size
    inputs, samples = [], []
    for i in range(2):
        inputs.append(torch.randint(0, 255, (3, h, w), dtype=torch.uint8))
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                        img_path=f"{i}.jpg"))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, h, w)))
        samples.append(s)
    return model.data_preprocessor({"inputs": inputs, "data_samples": samples}, training=True)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: os.path.relpath(p, ROOT / "configs"))
def test_config_builds_and_runs(config):
    """Each config: its model builds, a loss step back-propagates into the backbone, predict works."""
    cfg = Config.fromfile(config)
    if cfg.default_scope == "mmseg":
        cfg.model.data_preprocessor.size = (128, 160)
    if "rpn_head" in cfg.model:  # fewer proposals / RoIs: same code paths, CPU-test cost
        cfg.model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
        cfg.model.train_cfg.rcnn.sampler.num = 64
        cfg.model.test_cfg.rpn.update(nms_pre=200, max_per_img=100)
        cfg.model.test_cfg.rcnn.max_per_img = 20
    model = _build(cfg)
    assert isinstance(model.backbone, (LSNetBackbone, LOLViTBackbone, LiSANetBackbone))
    check_neck_channels(cfg)  # the pre-flight channel check accepts every shipped config
    if cfg.model.get("neck") is not None:
        assert list(model.neck.in_channels) == list(model.backbone.out_channels)
    model.train()
    if cfg.default_scope == "mmdet":
        data = _det_batch(model, with_mask="roi_head" in cfg.model and
                          cfg.model.roi_head.get("mask_head") is not None)
    else:
        data = _seg_batch(model)
    total, _ = model.parse_losses(model(**data, mode="loss"))
    assert torch.isfinite(total) and total > 0
    total.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert grads and sum(g is not None and g.abs().sum() > 0 for g in grads) > len(grads) // 2
    model.eval()
    with torch.no_grad():
        data = _det_batch(model, False) if cfg.default_scope == "mmdet" else _seg_batch(model)
        preds = model(**data, mode="predict")
    assert len(preds) == 2
    if cfg.default_scope == "mmdet":
        assert preds[0].pred_instances.bboxes.shape[-1] == 4
    else:
        assert preds[0].pred_sem_seg.data.shape[-2:] == (128, 160)


def test_paper_configs_state_their_target():
    """Every paper config starts with a header naming the paper number (or why there is none)."""
    for config in PAPER_CONFIGS:
        head = Path(config).read_text().split("_base_")[0]
        assert "AP" in head or "mIoU" in head or "No paper number" in head, config
        # inherited from the base config of the same method where the file derives from one
        assert Config.fromfile(config).get("custom_imports"), config


def test_registered_in_both_frameworks():
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG

    for cls in (LSNetBackbone, LOLViTBackbone, LiSANetBackbone, HyLiSANetBackbone):
        assert DET.get(cls.__name__) is cls
        assert SEG.get(cls.__name__) is cls
    assert DET.get("LSNetFPN") is LSNetFPN
    lsdense.mm.register.register_mmdet()  # idempotent
    lsdense.mm.register.register_mmseg()


@pytest.mark.parametrize("cls,kwargs,channels,strides", [
    (LSNetBackbone, dict(arch="t"), [64, 128, 256, 384], [8, 16, 32, 64]),
    (LOLViTBackbone, dict(arch="s"), [64, 96, 128], [8, 16, 32]),
    (LiSANetBackbone, dict(arch="s"), [64, 128, 320, 384], [4, 8, 16, 32]),
    (LiSANetIBackbone, dict(arch="i"), [192], [16]),
    (HyLiSANetBackbone, dict(arch="s"), [64, 128, 320, 384], [4, 8, 16, 32]),  # the YOLO name too
])
def test_backbone_outputs(cls, kwargs, channels, strides):
    m = cls(**kwargs).eval()
    outs = m(torch.randn(1, 3, 96, 128))
    assert isinstance(outs, tuple)
    assert [o.shape[1] for o in outs] == channels == list(m.out_channels)
    assert [-(-96 // s) for s in strides] == [o.shape[2] for o in outs]
    assert list(m.out_strides) == strides


def test_lsnet_fpn_strides_4_to_64():
    """Mask R-CNN neck: one transposed-conv level gives strides 4-64 from the stride-8 LSNet."""
    neck = LSNetFPN([64, 128, 256, 384], 32, num_outs=5, num_extra_trans_convs=1)
    feats = LSNetBackbone("t").eval()(torch.randn(1, 3, 128, 192))
    outs = neck(feats)
    assert [tuple(o.shape[2:]) for o in outs] == [(32, 48), (16, 24), (8, 12), (4, 6), (2, 3)]
    assert {k.split(".")[0] for k in neck.state_dict()} == {
        "lateral_convs", "fpn_convs", "extra_trans_convs", "extra_fpn_convs"}
    assert isinstance(neck.extra_trans_convs[0].conv, torch.nn.ConvTranspose2d)
    # RetinaNet-style extra levels still work on top: strides 4 .. 128
    neck = LSNetFPN([64, 128, 256, 384], 32, num_outs=6, num_extra_trans_convs=1,
                    add_extra_convs="on_input")
    assert [o.shape[2] for o in neck(feats)] == [32, 16, 8, 4, 2, 1]
    with pytest.raises(ValueError, match="num_extra_trans_convs"):
        LSNetFPN([64, 128], 32, num_outs=2, num_extra_trans_convs=2)


def test_frozen_stages_and_norm_eval_hold_in_mm_training():
    """Inside a detector: train() keeps the frozen units frozen and BatchNorm in eval; an
    optimiser step leaves them untouched and moves the rest."""
    from mmengine.optim import build_optim_wrapper

    cfg = Config.fromfile(str(ROOT / "configs" / "retinanet_lsnet_t_coco.py"))
    cfg.model.backbone.update(frozen_stages=1, init_cfg=None)
    model = _build(cfg)
    model.train()
    body = model.backbone
    frozen, free = body._freeze_units()[:2], body._freeze_units()[2:]
    assert all(not p.requires_grad for u in frozen for p in u.parameters())
    assert all(p.requires_grad for u in free for p in u.parameters())
    bns = [m for m in body.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not bn.training for bn in bns)  # norm_eval=True in the paper config
    assert model.neck.training and model.bbox_head.training
    before = {k: v.clone() for k, v in body.state_dict().items()}
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    loss, _ = model.parse_losses(model(**_det_batch(model, False), mode="loss"))
    optim.update_params(loss)
    after = body.state_dict()
    frozen_keys = [k for k in before if k.startswith(("patch_embed", "blocks1"))]
    free_keys = [k for k in before if k.startswith("blocks3") and k.endswith(".weight")]
    assert frozen_keys and all(torch.equal(before[k], after[k]) for k in frozen_keys)
    running = [k for k in before if k.endswith("running_mean")]
    assert all(torch.equal(before[k], after[k]) for k in running)  # BN statistics untouched
    assert any(not torch.equal(before[k], after[k]) for k in free_keys)


def test_lisanet_and_lolvit_no_decay_keys_match_parameters():
    """The custom_keys of the LiSANet / LOLViT configs hit real parameters."""
    from mmengine.optim import build_optim_wrapper

    for name, key in (("mask-rcnn_hylisanet_s_coco.py", "attn.r1"),
                      ("retinanet_lolvit_s_coco.py", "drelu.dp")):
        cfg = Config.fromfile(str(ROOT / "configs" / name))
        model = _build(cfg)
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        names = {id(p): n for n, p in model.named_parameters()}
        hit = [g["weight_decay"] for g in optim.optimizer.param_groups for p in g["params"]
               if key in names[id(p)]]
        assert hit and all(wd == 0 for wd in hit), name


def test_pretrained_init_cfg_uses_lsdense_loader(tmp_path):
    """init_cfg Pretrained reads {'model': ...} files (mmengine's prefix loader would load
    nothing), reports missing keys by name, and raises when nothing matches."""
    src = LSNetBackbone("t").state_dict()
    del src["blocks4.3.mixer.m.attention_biases"]
    path = tmp_path / "lsnet_t.pth"
    torch.save({"model": src}, path)
    m = LSNetBackbone("t", init_cfg=dict(type="Pretrained", checkpoint=str(path)))
    m.init_weights()
    assert torch.equal(m.state_dict()["patch_embed.0.c.weight"], src["patch_embed.0.c.weight"])
    torch.save({"state_dict": {"neck.foo.weight": torch.zeros(3)}}, tmp_path / "bad.pth")
    bad = LSNetBackbone("t", init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "bad.pth")))
    with pytest.raises(ValueError, match="matches no key"):
        bad.init_weights()
    pref = tmp_path / "det.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in src.items()}}, pref)
    m = LSNetBackbone("t", init_cfg=dict(type="Pretrained", checkpoint=str(pref), prefix="backbone"))
    m.init_weights()
    assert torch.equal(m.state_dict()["blocks3.2.mixer.conv.c.weight"],
                       src["blocks3.2.mixer.conv.c.weight"])


def test_pretrained_missing_and_unexpected_keys_logged_by_name_once(tmp_path, capfd):
    import logging

    from mmengine.logging import MMLogger

    src = LSNetBackbone("t").state_dict()
    del src["blocks4.3.mixer.m.attention_biases"]
    src["blocks9.0.c.weight"] = torch.zeros(3, 3)
    torch.save(src, tmp_path / "w.pth")
    m = LSNetBackbone("t", init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "w.pth")))
    records = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        m.init_weights()
    finally:
        logger.removeHandler(handler)
    text = "\n".join(records)
    assert "missing keys" in text and "blocks4.3.mixer.m.attention_biases" in text
    assert "unexpected keys" in text and "blocks9.0.c.weight" in text
    # reported once: in mmengine's log, not again by the adapter nor on stderr (mmengine's own
    # per-parameter init summary of a top-level module also names every parameter: not counted)
    reports = "\n".join(r for r in records if "keys" in r)
    assert sum("missing keys" in r for r in records) == 1
    assert reports.count("blocks4.3.mixer.m.attention_biases") == 1
    assert reports.count("blocks9.0.c.weight") == 1
    out, err = capfd.readouterr()
    assert "missing keys" not in err
    assert (out + err).count("missing keys") <= 1


def test_unknown_arch_message():
    with pytest.raises(ValueError, match=r"Unknown arch 'q' for lsnet\. Valid archs: b, s, t"):
        LSNetBackbone("q")
    with pytest.raises(ValueError, match="Valid archs: b, s"):
        HyLiSANetBackbone("i")
    cfg = Config.fromfile(str(ROOT / "configs" / "retinanet_lsnet_t_coco.py"))
    cfg.model.backbone.arch = "q"
    with pytest.raises(ValueError, match="Unknown arch 'q'"):
        _build(cfg)


def test_mmengine_checkpoints_load_under_weights_only(tmp_path):
    """What mmengine pickles (HistoryBuffer, numpy, Counter) is refused by torch's weights-only
    default; with lsdense.mmdet imported the same content is written and read back safely,
    without allow-listing getattr."""
    code = f"""
import collections, numpy as np, torch
from mmengine.logging import HistoryBuffer

def ckpt():
    hb = HistoryBuffer(); hb.update(np.float64(1.5)); hb.update(2.0)
    return {{'meta': {{'epoch': 1, 'eta': np.float64(3.0)}}, 'message_hub': {{'log_scalars': {{'loss': hb}}}},
            'param_schedulers': [{{'milestones': collections.Counter([8, 11])}}],
            'state_dict': {{'w': torch.ones(2)}}, 'arr': np.arange(3, dtype=np.float32)}}

torch.save(ckpt(), r'{tmp_path / "plain.pth"}')
try:
    torch.load(r'{tmp_path / "plain.pth"}')
    print('PLAIN-LOADED')
except Exception:
    print('PLAIN-REFUSED')
import lsdense.mmdet
torch.save(ckpt(), r'{tmp_path / "ours.pth"}')
out = torch.load(r'{tmp_path / "ours.pth"}')
hb = out['message_hub']['log_scalars']['loss']
assert hb.current() == 2.0 and hb.mean() == 1.75 and out['meta']['eta'] == 3.0
assert out['param_schedulers'][0]['milestones'][11] == 1
assert getattr not in torch.serialization.get_safe_globals()
print('OURS-LOADED')
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "PLAIN-REFUSED" in res.stdout, res.stderr[-2000:]
    assert "OURS-LOADED" in res.stdout, res.stderr[-2000:]


def test_import_lsdense_does_not_import_mm():
    code = "import sys, lsdense, lsdense.mm; assert not any(m.startswith(('mmdet', 'mmseg', 'mmengine', 'mmcv')) for m in sys.modules), [m for m in sys.modules if m.startswith('mm')]"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
