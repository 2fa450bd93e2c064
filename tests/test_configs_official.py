"""The LSNet configs equal the official recipes (THU-MIG/lsnet; ../shared/specs/official.md),
resolved through mmengine (bases merged), so a later edit cannot drift; the official
test-time resize (AlignResize) on hand-checked sizes and inside the ADE20K pipeline."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mmdet")
pytest.importorskip("mmseg")

from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import lsdense.mmdet  # noqa: E402,F401  (registers in mmdet)
import lsdense.mmseg  # noqa: E402,F401  (registers in mmseg)
from lsdense.mm.transforms import AlignResize, CudnnDeterministicHook, align_size  # noqa: E402
from lsdense.models import get_variant, list_backbones  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARCHS = tuple(get_variant(n).arch for n in list_backbones("lsnet"))  # t, s, b: one config each
DET = [f"{m}_lsnet_{a}_coco" for m in ("retinanet", "mask-rcnn") for a in ARCHS]
SEG = [f"fpn_lsnet_{a}_ade20k" for a in ARCHS]
NO_DECAY = "NoWeightDecayOptimWrapperConstructor"
WIDTHS = {"t": [64, 128, 256, 384], "s": [96, 192, 320, 448], "b": [128, 256, 384, 512]}


def _cfg(stem: str, folder: str = "configs") -> Config:
    return Config.fromfile(str(ROOT / folder / f"{stem}.py"))


def _arch(stem: str) -> str:
    return stem.split("_lsnet_")[1][0]


def _test_pipelines(cfg: Config):
    return [cfg.val_dataloader.dataset.pipeline, cfg.test_dataloader.dataset.pipeline]


# ---------------------------------------------------------------- every LSNet config


@pytest.mark.parametrize("stem", DET + SEG)
def test_lsnet_config_is_the_official_recipe(stem):
    cfg = _cfg(stem)
    arch, det = _arch(stem), stem in DET
    bb = cfg.model.backbone
    assert (bb.type, bb.arch, tuple(bb.out_indices), bb.frozen_stages) == \
        ("LSNetBackbone", arch, (0, 1, 2, 3), -1)
    assert bb.norm_eval is True  # the official backbone's train() always freezes its BatchNorm
    assert bb.init_cfg == dict(  # the official release, downloaded into torch.hub's cache
        type="Pretrained", checkpoint=f"https://huggingface.co/jameslahm/lsnet/resolve/main/lsnet_{arch}.pth")
    assert list(cfg.model.neck.in_channels) == WIDTHS[arch]

    opt = cfg.optim_wrapper
    assert opt.type == "OptimWrapper" and opt.get("clip_grad") is None
    assert opt.optimizer == dict(type="AdamW", lr=1e-4 if det else 2e-4, betas=(0.9, 0.999),
                                 weight_decay=0.05 if det else 1e-4)
    if det:  # only attention_biases (LSNet.no_weight_decay()) exempt; norms decayed
        assert opt.constructor == NO_DECAY and not opt.get("paramwise_cfg")
    else:  # nothing exempt
        assert opt.get("constructor") is None and not opt.get("paramwise_cfg")

    assert cfg.randomness.seed == 0
    # mmengine's deterministic=True adds torch.use_deterministic_algorithms, which makes the CUDA
    # backward of bilinear interpolate raise: determinism is cuDNN-only, as official
    assert not cfg.randomness.get("deterministic", False)
    hooks = [h.type for h in cfg.get("custom_hooks", [])]
    if det:
        assert hooks == [] and cfg.train_dataloader.batch_size == 2
        assert cfg.train_cfg.max_epochs == 12
        assert [s.type for s in cfg.param_scheduler] == ["LinearLR", "MultiStepLR"]
        assert cfg.param_scheduler[0].end == 500 and cfg.param_scheduler[1].milestones == [8, 11]
        for pipeline in _test_pipelines(cfg):
            assert dict(type="Resize", scale=(1333, 800), keep_ratio=True) in pipeline
    else:
        assert hooks == ["CudnnDeterministicHook"] and cfg.env_cfg.cudnn_benchmark is False
        assert cfg.train_dataloader.batch_size == 4 and cfg.train_cfg.max_iters == 40000
        assert cfg.param_scheduler == [dict(type="PolyLR", power=0.9, eta_min=1e-6, begin=0,
                                            end=40000, by_epoch=False)]
        for pipeline in _test_pipelines(cfg):
            assert [t.type for t in pipeline] == \
                ["LoadImageFromFile", "AlignResize", "LoadAnnotations", "PackSegInputs"]
            assert pipeline[1] == dict(type="AlignResize", scale=(2048, 512), keep_ratio=True,
                                       size_divisor=32)


@pytest.mark.parametrize("stem", DET + SEG)
def test_header_names_log_and_paper_figures(stem):
    """The header gives the official log's final figure (from the variant registry) and the
    paper's figure where it differs (RetinaNet-S 36.50 vs 36.7; FPN-S/B 41.56 / 43.09 vs
    41.0 / 43.0)."""
    header = "".join(line for line in (ROOT / "configs" / f"{stem}.py").read_text().splitlines(True)
                     if line.startswith("#"))
    figures = get_variant(f"lsnet_{_arch(stem)}").published.dense[stem]
    assert figures
    for metric, fig in figures.items():
        assert "official log" in fig.source
        assert f"{fig.value:.2f}" in header, (stem, metric)
        if fig.paper_differs():
            assert f"{fig.paper}" in header, (stem, metric)
    differs = {(s, m) for a in ARCHS for s, ms in get_variant(f"lsnet_{a}").published.dense.items()
               for m, f in ms.items() if f.paper_differs()}
    assert differs == {("retinanet_lsnet_s_coco", "bbox_mAP"), ("fpn_lsnet_s_ade20k", "mIoU"),
                       ("fpn_lsnet_b_ade20k", "mIoU")}


def test_weight_decay_groups_as_official():
    """Through mmengine's optimizer constructor on the built models: detection decays the
    BatchNorm / GroupNorm parameters and not attention_biases; segmentation decays all."""
    from mmengine.optim import build_optim_wrapper

    for stem, scope, wd in (("retinanet_lsnet_t_coco", "mmdet", 0.05),
                            ("fpn_lsnet_t_ade20k", "mmseg", 1e-4)):
        cfg = _cfg(stem)
        cfg.model.backbone.init_cfg = None
        init_default_scope(scope)
        if scope == "mmdet":
            from mmdet.registry import MODELS
        else:
            from mmseg.registry import MODELS
        model = MODELS.build(cfg.model)
        optim = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
        decay = {id(p): g["weight_decay"] for g in optim.param_groups for p in g["params"]}
        names = dict(model.named_parameters())
        norms = [p for m in model.backbone.modules()
                 if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)) for p in m.parameters()]
        biases = [p for n, p in names.items() if "attention_biases" in n]
        assert norms and biases and len(decay) == len(names)
        assert {decay[id(p)] for p in norms} == {wd}
        assert {decay[id(p)] for p in biases} == ({0.0} if scope == "mmdet" else {wd})


def test_semantic_fpn_backbone_batchnorm_stays_in_eval_mode():
    cfg = _cfg("fpn_lsnet_t_ade20k")
    cfg.model.backbone.init_cfg = None
    init_default_scope("mmseg")
    from mmseg.registry import MODELS

    model = MODELS.build(cfg.model)
    model.train()
    bns = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    assert model.decode_head.training


# ---------------------------------------------------------------- the other families


@pytest.mark.parametrize("stem, exempt", [
    ("retinanet_lolvit_s_coco", "drelu.dp"), ("retinanet_lolvit_x_coco", "drelu.dp"),
    ("mask-rcnn_lolvit_s_coco", "drelu.dp"), ("mask-rcnn_lolvit_x_coco", "drelu.dp"),
    ("retinanet_lolvit_s_voc0712", "drelu.dp"), ("retinanet_lsnet_t_voc0712", "attention_biases"),
    ("fpn_lolvit_x_ade20k", None)])
def test_configs_on_the_lsnet_recipe_follow_it(stem, exempt):
    """LOLViT's mmdet/mmseg configs and the LSNet VOC config use LSNet's recipe, so they follow
    the official one: only the learnable scalars exempt in detection, nothing in segmentation,
    seed 0; Semantic FPN with frozen BatchNorm statistics and the AlignResize test resize."""
    cfg = _cfg(stem)
    assert cfg.randomness.seed == 0 and not cfg.randomness.get("deterministic", False)
    assert cfg.model.backbone.norm_eval is True
    if exempt:  # the backbone's no_weight_decay(): test_resolved_param_groups_as_before
        assert cfg.optim_wrapper.constructor == NO_DECAY
        assert not cfg.optim_wrapper.get("paramwise_cfg")
    else:
        assert not cfg.optim_wrapper.get("paramwise_cfg")
        assert [h.type for h in cfg.custom_hooks] == ["CudnnDeterministicHook"]
        for pipeline in _test_pipelines(cfg):
            assert pipeline[1].type == "AlignResize"


@pytest.mark.parametrize("stem", ["mask-rcnn_lisanet_s_coco", "retinanet_lisanet_s_coco",
                                  "fpn_lisanet_s_ade20k"])
def test_lisanet_configs_keep_their_swin_pvt_recipe(stem):
    """LiSANet's recipe is Swin's / PVT's (the LiSA paper), not LSNet's: norms and the LiSA
    kernels stay exempt from weight decay."""
    cfg = _cfg(stem)
    assert cfg.optim_wrapper.paramwise_cfg == dict(norm_decay_mult=0.0)
    assert cfg.optim_wrapper.constructor == NO_DECAY  # attn.r1 / attn.r2: LiSANet.no_weight_decay()


@pytest.mark.parametrize("stem", ["fpn_lsnet_t_toyade20k", "retinanet_lsnet_t_toycoco",
                                  "retinanet_lsnet_t_toyvoc", "mask-rcnn_lsnet_t_toycoco"])
def test_quickstarts_train_batchnorm_from_scratch(stem):
    """The quickstarts inherit the official configs but start from scratch: BatchNorm trains
    and norm layers are not decayed."""
    cfg = _cfg(stem, "configs/quickstart")
    assert cfg.model.backbone.norm_eval is False and cfg.model.backbone.init_cfg is None
    assert cfg.optim_wrapper.paramwise_cfg.norm_decay_mult == 0.0
    assert cfg.randomness.seed == 0


# ---------------------------------------------------------------- optimizer groups

# The custom_keys each backbone family's configs wrote by hand before the exemptions came from
# no_weight_decay() (lsdense.mm.optim): the reference the resolved groups must still equal.
_HAND_WRITTEN_KEYS = {"LSNetBackbone": ("attention_biases",), "LOLViTBackbone": ("drelu.dp",),
                      "LiSANetBackbone": ("attn.r1", "attn.r2"),
                      "HyLiSANetBackbone": ("attn.r1", "attn.r2")}


# One config per kind of optimizer groups: each backbone family (HyLiSANet's conv stages
# included) under each schedule _base_, and the quickstarts' norm / GroupNorm-head exemptions.
# All 30 configs were compared group by group before/after the _base_ refactor (lsdense commit
# message); building every model here would add ~30 s to the suite.
_GROUP_CONFIGS = ["retinanet_lsnet_t_coco.py", "mask-rcnn_lolvit_s_coco.py",
                  "retinanet_hylisanet_s_coco.py", "fpn_lisanet_s_ade20k.py", "fpn_lsnet_t_ade20k.py",
                  "quickstart/fpn_lsnet_t_toyade20k.py", "quickstart/retinanet_lsnet_t_toycoco.py"]


def _groups(model, optim_wrapper) -> dict:
    import logging

    from mmengine.logging import MMLogger
    from mmengine.optim import build_optim_wrapper

    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # mmengine logs every parameter's options at INFO
    try:
        groups = build_optim_wrapper(model, optim_wrapper).optimizer.param_groups
    finally:
        logger.setLevel(level)
    for g in groups:
        opts = {k: v for k, v in g.items() if k != "params"}
        for p in g["params"]:
            out[names[id(p)]] = opts
    return out


@pytest.mark.parametrize("name", _GROUP_CONFIGS)
def test_resolved_param_groups_as_before(name):
    """The optimizer the config builds (schedule _base_, exemptions from no_weight_decay())
    has the same parameter groups, every option included, as mmengine's default constructor
    given the keys the configs wrote by hand before; the exempt set is the backbone's
    no_weight_decay() (plus the norms where norm_decay_mult=0)."""
    from lsdense.mm.optim import no_weight_decay_names

    cfg = Config.fromfile(str(ROOT / "configs" / name))
    cfg.model.backbone.init_cfg = None
    init_default_scope(cfg.default_scope)
    registry = __import__(f"{cfg.default_scope}.registry", fromlist=["MODELS"])
    model = registry.MODELS.build(cfg.model)
    groups = _groups(model, cfg.optim_wrapper)
    assert set(groups) == {n for n, p in model.named_parameters() if p.requires_grad}

    ref = cfg.optim_wrapper.copy()
    if ref.pop("constructor", None) == NO_DECAY:
        keys = _HAND_WRITTEN_KEYS[cfg.model.backbone.type]
        ref.paramwise_cfg = dict(ref.get("paramwise_cfg", {}),
                                 custom_keys={k: dict(decay_mult=0.0) for k in keys})
        exempt = {f"backbone.{n}" for n in model.backbone.no_weight_decay()}
        assert exempt and no_weight_decay_names(model) == exempt
        assert all(groups[n]["weight_decay"] == 0.0 for n in exempt)
    assert groups == _groups(model, ref)
    norm_decay = cfg.optim_wrapper.get("paramwise_cfg", {}).get("norm_decay_mult")
    decayed = {n for n, o in groups.items() if o.get("weight_decay", -1) != 0.0}
    if norm_decay is None and ref.get("paramwise_cfg") is None:  # one group: all decayed
        assert len(decayed) == len(groups)


def test_no_weight_decay_constructor_keeps_user_keys_and_needs_weight_decay():
    """A user custom key's lr_mult still applies to an exempt parameter (decay_mult=0 added on
    top of the key mmengine would pick); nested modules' names are prefixed; names a module does
    not have are ignored, as timm does; no weight_decay in the optimizer is an error."""
    from mmengine.optim import build_optim_wrapper

    class Inner(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))
            self.conv = torch.nn.Conv2d(2, 2, 1)

        def no_weight_decay(self):
            return {"scale", "dist_token"}

    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    model.add_module("backbone", Inner())
    cfg = dict(constructor=NO_DECAY, optimizer=dict(type="AdamW", lr=1.0, weight_decay=0.5),
               paramwise_cfg=dict(custom_keys={"backbone": dict(lr_mult=0.1)}))
    groups = _groups(model, cfg)
    assert groups["backbone.scale"]["weight_decay"] == 0.0 and groups["backbone.scale"]["lr"] == 0.1
    assert groups["backbone.conv.weight"]["weight_decay"] == 0.5
    assert groups["backbone.conv.weight"]["lr"] == pytest.approx(0.1)
    assert (groups["0.weight"]["lr"], groups["0.weight"]["weight_decay"]) == (1.0, 0.5)
    with pytest.raises(ValueError, match="sets no weight_decay"):
        build_optim_wrapper(model, dict(constructor=NO_DECAY, optimizer=dict(type="SGD", lr=1.0)))


# ---------------------------------------------------------------- AlignResize


@pytest.mark.parametrize("hw, resized, aligned", [
    ((512, 683), (512, 683), (512, 704)),    # the official example
    ((375, 500), (512, 683), (512, 704)),    # ADE20K-like: x 1.3653 (short side to 512)
    ((256, 256), (512, 512), (512, 512)),    # already aligned: untouched after the rescale
    ((100, 1000), (205, 2048), (224, 2048)),  # long side limited to 2048: x 2.048
    ((640, 480), (683, 512), (704, 512)),    # portrait
    ((300, 301), (512, 514), (512, 544)),    # 514 -> 544: up, never down to 512
])
def test_align_resize_sizes(hw, resized, aligned):
    """Hand-checked: keep-ratio scale s = min(2048 / long, 512 / short), side = int(side * s +
    0.5) (mmcv.imrescale), then each side up to a multiple of 32."""
    h, w = hw
    s = min(2048 / max(h, w), 512 / min(h, w))
    assert (int(h * s + 0.5), int(w * s + 0.5)) == resized
    assert align_size(*resized, 32) == aligned
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    seg = rng.integers(0, 4, (h, w), dtype=np.uint8)
    t = AlignResize(scale=(2048, 512), keep_ratio=True, size_divisor=32)
    out = t(dict(img=img, gt_seg_map=seg, img_shape=(h, w), ori_shape=(h, w)))
    ah, aw = out["img"].shape[:2]
    assert (ah, aw) == aligned
    assert out["img_shape"] == (ah, aw) and out["gt_seg_map"].shape == (ah, aw)
    assert out["scale_factor"] == (aw / w, ah / h)
    assert set(np.unique(out["gt_seg_map"])) <= set(np.unique(seg))  # nearest: no new labels
    assert out["ori_shape"] == (h, w)


def test_align_resize_matches_mmcv_resize_then_resize_up():
    """Same pixels as mmcv's Resize followed by a bilinear resize to the aligned size."""
    import mmcv
    from mmcv.transforms import Resize

    img = np.random.default_rng(1).integers(0, 255, (375, 500, 3), dtype=np.uint8)
    ref = Resize(scale=(2048, 512), keep_ratio=True)(dict(img=img.copy()))["img"]
    assert ref.shape[:2] == (512, 683)
    ref = mmcv.imresize(ref, (704, 512))
    out = AlignResize(scale=(2048, 512), keep_ratio=True)(dict(img=img.copy()))["img"]
    assert np.array_equal(out, ref)


def test_align_resize_bad_input():
    with pytest.raises(ValueError, match="size_divisor must be a positive int"):
        AlignResize(scale=(2048, 512), size_divisor=0)
    t = AlignResize(scale=(2048, 512), keep_ratio=True)
    with pytest.raises(ValueError, match="gt_bboxes"):
        t(dict(img=np.zeros((10, 10, 3), np.uint8), gt_bboxes=np.zeros((1, 4), np.float32)))
    assert "size_divisor=32" in repr(t)


def test_cudnn_deterministic_hook():
    old = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = True
        CudnnDeterministicHook().before_run(None)
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old


def test_ade20k_test_pipeline_runs_and_prediction_returns_to_original_size(tmp_path):
    """The config's own test pipeline on a 375 x 500 image: network input 512 x 704, ground
    truth kept at 375 x 500, and the segmentor's prediction resized back to 375 x 500."""
    import mmcv
    from mmengine.dataset import Compose

    cfg = _cfg("fpn_lsnet_t_ade20k")
    init_default_scope("mmseg")
    rng = np.random.default_rng(0)
    img_path, seg_path = tmp_path / "a.jpg", tmp_path / "a.png"
    mmcv.imwrite(rng.integers(0, 255, (375, 500, 3), dtype=np.uint8), str(img_path))
    mmcv.imwrite(rng.integers(0, 151, (375, 500), dtype=np.uint8), str(seg_path))
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    data = pipeline(dict(img_path=str(img_path), seg_map_path=str(seg_path),
                         reduce_zero_label=True, seg_fields=[]))
    assert tuple(data["inputs"].shape) == (3, 512, 704)
    meta = data["data_samples"].metainfo
    assert meta["img_shape"] == (512, 704) and meta["ori_shape"] == (375, 500)
    assert data["data_samples"].gt_sem_seg.data.shape[-2:] == (375, 500)

    from mmseg.registry import MODELS

    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        (pred,) = model.test_step(dict(inputs=[data["inputs"]], data_samples=[data["data_samples"]]))
    assert pred.pred_sem_seg.data.shape[-2:] == (375, 500)


def test_model_index_lists_every_config_with_the_registry_figures():
    """model-index.yml (mmdet's metafile format) imports one metafile per family; every
    paper config is listed once with an existing Config path, and each Result is the figure
    lsdense's registry publishes for that config (``Published.dense``), none invented."""
    import yaml

    from lsdense.models import list_backbones

    index = yaml.safe_load((ROOT / "model-index.yml").read_text())
    models = [m for f in index["Import"] for m in yaml.safe_load((ROOT / f).read_text())["Models"]]
    names = [m["Name"] for m in models]
    assert sorted(names) == sorted(p.stem for p in (ROOT / "configs").glob("*.py"))
    published = {}
    for fam in ("lsnet", "lisanet", "hylisanet", "lolvit"):
        for n in list_backbones(fam):
            pub = get_variant(n).published
            published.update(pub.dense if pub else {})
    metric = {"box AP": "bbox_mAP", "mask AP": "segm_mAP", "mIoU": "mIoU"}
    for m in models:
        assert (ROOT / m["Config"]).is_file()
        got = {metric[k]: v for r in m.get("Results") or [] for k, v in r["Metrics"].items()}
        want = {k: f.value for k, f in published.get(m["Name"], {}).items()
                if k in metric.values()}
        assert got == want, m["Name"]
