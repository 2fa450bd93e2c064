"""Toy data, the quickstart through tools/train.py and tools/test.py, resume, the
converter, and the clear errors before (and during) training. CPU, tiny toy sets."""
from __future__ import annotations

import hashlib
import json
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mmdet")
pytest.importorskip("mmseg")

import lsdense.mmdet  # noqa: E402,F401
import lsdense.mmseg  # noqa: E402,F401
from lsdense.mm.checks import DatasetNotFoundError, PreflightError  # noqa: E402
from lsdense.mm.demo import QUICKSTART, toy_data_options  # noqa: E402
from lsdense.mm.runner import DataError, train  # noqa: E402
from lsdense.mm.runner import test as run_test  # noqa: E402
from lsdense.toydata.ade import ADE_IDS, ADE_TOY_CLASSES  # noqa: E402
from lsdense.toydata.coco import COCO_CLASSES, make_coco  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"
DET = QUICKSTART["det"]
SEG = QUICKSTART["seg"]


def _det_opts(toy: Path, **extra):
    opts = toy_data_options("coco", toy / "coco", workers=0)
    opts.update({"train_cfg.max_epochs": 2, "train_cfg.val_interval": 2,
                 "default_hooks.checkpoint.interval": 1, "default_hooks.logger.interval": 1})
    opts.update(extra)
    return opts


def _tool(name):
    return runpy.run_path(str(TOOLS / f"{name}.py"), run_name="lsdense_tool")["main"]


# ---------------------------------------------------------------- toy data


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_toy_data_is_deterministic(tmp_path):
    make_coco(tmp_path / "a", 3, 2, seed=5)
    make_coco(tmp_path / "b", 3, 2, seed=5)
    make_coco(tmp_path / "c", 3, 2, seed=6)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_toy_coco_format(mm_toy_data):
    from pycocotools.coco import COCO

    coco = COCO(str(mm_toy_data / "coco" / "annotations" / "instances_train2017.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(COCO_CLASSES)
    assert len(coco.getImgIds()) == 16
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 16
    for ann in anns[:20]:
        mask = coco.annToMask(ann)
        x, y, w, h = ann["bbox"]
        ys, xs = np.nonzero(mask)
        # the polygon mask and the box describe the same visible pixels; polygons run through
        # the centres of the boundary pixels (cv2.findContours), so rasterising them loses up
        # to ~2 px on the far sides
        assert abs(mask.sum() - ann["area"]) <= 0.25 * ann["area"] + 10
        assert abs(xs.min() - x) <= 1 and abs(ys.min() - y) <= 1
        assert 0 <= (x + w) - (xs.max() + 1) <= 2 and 0 <= (y + h) - (ys.max() + 1) <= 2
    assert len({len(coco.getAnnIds(imgIds=i)) for i in coco.getImgIds()}) > 1  # varied scenes


def test_toy_voc_and_ade_read_by_mm_datasets(mm_toy_data):
    from mmdet.datasets import VOCDataset
    from mmseg.datasets import ADE20KDataset
    from mmseg.datasets.transforms import LoadAnnotations

    voc = VOCDataset(data_root=str(mm_toy_data / "voc"), ann_file="VOC2007/ImageSets/Main/trainval.txt",
                     data_prefix=dict(sub_data_root="VOC2007/"), metainfo=dict(classes=COCO_CLASSES),
                     pipeline=[], test_mode=True)
    assert len(voc) == 8
    insts = [i for k in range(len(voc)) for i in voc.get_data_info(k)["instances"]]
    assert insts and {i["bbox_label"] for i in insts} <= {0, 1, 2}
    assert all(i["bbox"][2] > i["bbox"][0] for i in insts)
    assert (mm_toy_data / "voc" / "VOC2012" / "ImageSets" / "Main" / "trainval.txt").is_file()
    assert ADE_TOY_CLASSES == ("sky", "floor", "box", "tent", "ball")
    assert all(ADE20KDataset.METAINFO["classes"][i - 1] == n for n, i in ADE_IDS.items())
    ade = ADE20KDataset(data_root=str(mm_toy_data / "ade"), data_prefix=dict(
        img_path="images/validation", seg_map_path="annotations/validation"),
        metainfo=dict(classes=ADE_TOY_CLASSES), pipeline=[LoadAnnotations()])
    assert len(ade) == 4
    seg = ade[0]["gt_seg_map"]
    assert set(np.unique(seg)) <= {0, 1, 2, 3, 4} and len(np.unique(seg)) >= 3


# ---------------------------------------------------------------- train / test / resume


def test_quickstart_retinanet_interrupted_resumes_and_tools_test_evaluates(mm_toy_data, tmp_path):
    """Training interrupted after 3 of 4 iterations resumes from the epoch-1 checkpoint with
    --resume and ends at the same iteration count as an uninterrupted run; tools/test.py then
    evaluates the checkpoint with CocoMetric and writes the drawn predictions."""
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS

    @HOOKS.register_module(force=True)
    class InterruptAfter(Hook):  # simulates a killed job
        def __init__(self, iters):
            self.iters = iters

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter + 1 >= self.iters:
                raise KeyboardInterrupt

    work = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(DET, work_dir=work, cfg_options=_det_opts(
            mm_toy_data, custom_hooks=[dict(type="InterruptAfter", iters=3)]))
    assert (work / "epoch_1.pth").is_file() and not (work / "epoch_2.pth").exists()
    status = _tool("train")([str(DET), "--work-dir", str(work), "--resume", "--cfg-options",
                             *[f"{k}={v}" for k, v in _det_opts(mm_toy_data).items()]])
    assert status == 0
    ckpt = torch.load(work / "epoch_2.pth", map_location="cpu")  # weights-only default
    iters_per_epoch = 16 // 8
    assert ckpt["meta"]["iter"] == 2 * iters_per_epoch and ckpt["meta"]["epoch"] == 2
    logs = "".join(p.read_text() for p in work.rglob("*.log"))
    assert "resumed epoch: 1, iter: 2" in logs

    # the checkpoint tools/train.py wrote has the official backbone keys and is the backbone
    # weights of a new run, with or without prefix='backbone.'
    from lsdense.mm.backbones import LSNetBackbone

    saved = ckpt["state_dict"]
    assert "backbone.patch_embed.0.c.weight" in saved and not any(".body." in k for k in saved)
    for prefix in ("backbone.", None):
        bb = LSNetBackbone("t", init_cfg=dict(type="Pretrained", checkpoint=str(work / "epoch_2.pth"),
                                              prefix=prefix))
        bb.init_weights()
        assert all(torch.equal(v, saved[f"backbone.{k}"]) for k, v in bb.state_dict().items())

    show = tmp_path / "show"
    status = _tool("test")([str(DET), str(work / "epoch_2.pth"), "--work-dir", str(tmp_path / "t"),
                            "--show-dir", str(show), "--cfg-options",
                            *[f"{k}={v}" for k, v in toy_data_options("coco", mm_toy_data / "coco", 0).items()]])
    assert status == 0
    assert len(list(show.glob("*.jpg"))) == 8  # every validation image drawn
    metrics = run_test(DET, work / "epoch_2.pth", work_dir=tmp_path / "t2",
                   cfg_options=toy_data_options("coco", mm_toy_data / "coco", 0))
    assert 0.0 <= metrics["coco/bbox_mAP"] <= 1.0 and "coco/bbox_mAP_50" in metrics


def test_quickstart_semantic_fpn_trains_and_tests(mm_toy_data, tmp_path):
    opts = toy_data_options("ade20k", mm_toy_data / "ade", workers=0)
    opts.update({"train_cfg.max_iters": 2, "train_cfg.val_interval": 2,
                 "default_hooks.checkpoint.interval": 2, "param_scheduler": [
                     dict(type="PolyLR", power=0.9, eta_min=1e-6, begin=0, end=2, by_epoch=False)]})
    runner = train(SEG, work_dir=tmp_path / "seg", cfg_options=opts)
    assert runner.iter == 2
    show = tmp_path / "segshow"
    metrics = run_test(SEG, tmp_path / "seg" / "iter_2.pth", work_dir=tmp_path / "seg",
                   show_dir=show, cfg_options=toy_data_options("ade20k", mm_toy_data / "ade", 0))
    assert {"mIoU", "aAcc"} <= set(metrics)
    assert len(list(show.rglob("*.png"))) == 4
    # mmseg's --out (a folder of predicted maps) and --tta (SegTTAModel, 6 ratios x flip)
    metrics = run_test(SEG, tmp_path / "seg" / "iter_2.pth", work_dir=tmp_path / "seg",
                       out=str(tmp_path / "pred"), tta=True,
                       cfg_options=toy_data_options("ade20k", mm_toy_data / "ade", 0))
    assert {"mIoU", "aAcc"} <= set(metrics)
    assert len(list((tmp_path / "pred").rglob("*.png"))) == 4


# ---------------------------------------------------------------- converter


def test_convert_official_retinanet_checkpoint(tmp_path):
    """A synthetic checkpoint in the official layout (official LSNet-T dense backbone names
    and shapes, attention_bias_idxs buffers, mmdet 2.x neck/head names, a 'meta' block)
    converts, loads into our RetinaNet, and the backbone reproduces the official outputs."""
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "golden"))
    from detweights import deterministic_state_dict, fixed_input
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS

    golden = torch.load(ROOT / "tests" / "golden" / "lsnet_t_official_outputs.pt")["t_det"]
    backbone = deterministic_state_dict(golden["keys"])
    for key, shape in golden["keys"]:
        if key.endswith("attention_bias_idxs"):
            backbone[key] = torch.zeros(shape, dtype=torch.long)
    config = ROOT / "configs" / "retinanet_lsnet_t_coco.py"
    cfg = Config.fromfile(str(config))
    cfg.model.backbone.init_cfg = None
    init_default_scope("mmdet")
    reference = MODELS.build(cfg.model)
    heads = {k: torch.randn_like(v) for k, v in reference.state_dict().items()
             if not k.startswith("backbone.")}
    official = {f"backbone.{k}": v for k, v in backbone.items()}
    official.update(heads)
    official["neck.unknown_conv.weight"] = torch.zeros(1)  # must be reported, not lost silently
    src = tmp_path / "lsnet_t_retinanet.pth"
    torch.save({"meta": {"mmdet_version": "2.25.0", "CLASSES": ("person",)},
                "state_dict": official}, src)

    dst = tmp_path / "converted.pth"
    status = _tool("convert_official")([str(src), str(config), str(dst)])
    assert status == 1  # one key could not be mapped
    from lsdense.mm.convert import convert_official

    res = convert_official(src, config, dst)
    assert res.unmapped == ["neck.unknown_conv.weight (no such key in the model)"]
    assert res.missing == []
    assert all(k.endswith("attention_bias_idxs") for k in res.dropped) and res.dropped
    model = MODELS.build(cfg.model)
    state = torch.load(dst, map_location="cpu")["state_dict"]
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.bbox_head.retina_cls.weight, heads["bbox_head.retina_cls.weight"])
    model.eval()
    with torch.no_grad():
        outs = model.backbone(fixed_input(golden["input_shape"]))
    for got, ref in zip(outs, golden["outputs"]):
        assert (got - ref).abs().max() / ref.abs().max() < 2e-5


# ---------------------------------------------------------------- clear errors


def test_missing_dataset_path_names_it_and_the_fix(tmp_path):
    missing = tmp_path / "nowhere" / "coco"
    with pytest.raises(DatasetNotFoundError) as err:
        train(DET, work_dir=tmp_path / "w", cfg_options=toy_data_options("coco", missing))
    msg = str(err.value)
    assert str(missing) in msg and "python tools/make_toy_data.py coco --out" in msg
    status = _tool("train")([str(DET), "--work-dir", str(tmp_path / "w"), "--cfg-options",
                             *[f"{k}={v}" for k, v in toy_data_options("coco", missing).items()]])
    assert status == 1
    assert not (tmp_path / "w").exists() or not list((tmp_path / "w").rglob("*.pth"))


def test_missing_ade_path_suggests_ade_toy_data(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="make_toy_data.py ade20k"):
        train(SEG, work_dir=tmp_path / "w", cfg_options=toy_data_options("ade20k", tmp_path / "x"))


def test_unreadable_annotation(mm_toy_data, tmp_path):
    bad = tmp_path / "coco"
    shutil.copytree(mm_toy_data / "coco", bad)
    ann = bad / "annotations" / "instances_train2017.json"
    ann.write_text('{"images": [')
    with pytest.raises(PreflightError, match="Annotation file unreadable: .*instances_train2017.json"):
        train(DET, work_dir=tmp_path / "w", cfg_options=toy_data_options("coco", bad))


def test_num_classes_mismatch(mm_toy_data, tmp_path):
    opts = toy_data_options("coco", mm_toy_data / "coco")
    opts["model.bbox_head.num_classes"] = 80
    with pytest.raises(PreflightError, match=r"model\.bbox_head\.num_classes=80 but "
                                             r"train_dataloader\.dataset has 3 classes"):
        train(DET, work_dir=tmp_path / "w", cfg_options=opts)
    opts = toy_data_options("coco", mm_toy_data / "coco")
    opts["train_dataloader.dataset.metainfo.classes"] = ["circle", "square", "hexagon"]
    with pytest.raises(PreflightError, match=r"\['hexagon'\] are not categories"):
        train(DET, work_dir=tmp_path / "w", cfg_options=opts)


def test_unknown_arch_before_training(mm_toy_data, tmp_path):
    opts = toy_data_options("coco", mm_toy_data / "coco")
    opts["model.backbone.arch"] = "xl"
    with pytest.raises(PreflightError, match=r"model\.backbone: Unknown arch 'xl' for lsnet"):
        train(DET, work_dir=tmp_path / "w", cfg_options=opts)


def test_checkpoint_matching_no_backbone_key(mm_toy_data, tmp_path):
    torch.save({"state_dict": {"decode_head.conv_seg.weight": torch.zeros(2, 2)}}, tmp_path / "x.pth")
    opts = _det_opts(mm_toy_data, **{"model.backbone.init_cfg": dict(_delete_=True, type="Pretrained",
                                                             checkpoint=str(tmp_path / "x.pth"))})
    with pytest.raises(ValueError, match="Checkpoint matches no key of LSNet"):
        train(DET, work_dir=tmp_path / "w", cfg_options=opts)
    assert not list((tmp_path / "w").rglob("*.pth"))  # nothing trained


def test_config_forgetting_custom_imports(tmp_path):
    cfg = tmp_path / "no_imports.py"
    cfg.write_text(
        "_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']\n"
        "model = dict(backbone=dict(_delete_=True, type='LSNetBackbone', arch='t'),\n"
        "             neck=dict(in_channels=[64, 128, 256, 384], start_level=0))\n")
    with pytest.raises(PreflightError, match=r"(?s)uses LSNetBackbone but does not import "
                                             r"lsdense\.mmdet.*custom_imports = dict\(imports="
                                             r"\['lsdense\.mmdet'\]"):
        train(cfg, work_dir=tmp_path / "w")


def test_corrupt_image_reported_by_file_name(mm_toy_data, tmp_path, capsys):
    bad = tmp_path / "coco"
    shutil.copytree(mm_toy_data / "coco", bad)
    victim = sorted((bad / "train2017").glob("*.jpg"))[3]
    victim.write_bytes(b"\xff\xd8 this is not a jpeg")
    opts = _det_opts(mm_toy_data, **toy_data_options("coco", bad, workers=0))
    with pytest.raises(DataError, match=f"Could not read image {victim}"):
        train(DET, work_dir=tmp_path / "w", cfg_options=opts)
    status = _tool("train")([str(DET), "--work-dir", str(tmp_path / "w2"), "--cfg-options",
                             *[f"{k}={v}" for k, v in opts.items()]])
    assert status == 1
    err = capsys.readouterr().err
    assert f"error: Could not read image {victim}" in err and "Traceback" not in err


def test_empty_or_missing_image_found_before_training(mm_toy_data, tmp_path):
    bad = tmp_path / "coco"
    shutil.copytree(mm_toy_data / "coco", bad)
    victim = sorted((bad / "val2017").glob("*.jpg"))[1]
    victim.write_bytes(b"")
    with pytest.raises(PreflightError, match=f"Image file is empty \\(corrupt\\): {victim}"):
        train(DET, work_dir=tmp_path / "w", cfg_options=toy_data_options("coco", bad))
    victim.unlink()
    with pytest.raises(PreflightError, match=f"Image missing: {victim}"):
        train(DET, work_dir=tmp_path / "w", cfg_options=toy_data_options("coco", bad))


def test_make_toy_data_cli(tmp_path):
    status = _tool("make_toy_data")(["voc", "--out", str(tmp_path / "VOCdevkit"),
                                     "--num-train", "2", "--num-val", "1"])
    assert status == 0
    xml = sorted((tmp_path / "VOCdevkit" / "VOC2007" / "Annotations").glob("*.xml"))
    assert len(xml) == 3
    ids = (tmp_path / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "test.txt").read_text().split()
    assert len(ids) == 1 and (tmp_path / "VOCdevkit" / "VOC2007" / "JPEGImages" / f"{ids[0]}.jpg").is_file()
    data = json.dumps(sorted(p.name for p in xml))
    assert "2007_" in data


def test_toy_data_never_written_into_a_dataset(mm_toy_data, tmp_path, capsys):
    """A new user's path (issue 22): an ann_file typo under a real dataset root. The message
    offers toy data only for a missing data root, and make_toy_data refuses a folder that
    holds files (it used to write its annotations over the real ones)."""
    real = tmp_path / "coco"
    shutil.copytree(mm_toy_data / "coco", real)
    before = {p: p.read_bytes() for p in (real / "annotations").glob("*.json")}
    opts = {**toy_data_options("coco", real), "train_dataloader.dataset.ann_file":
            "annotations/instances_trian2017.json"}
    with pytest.raises(PreflightError) as err:
        train(DET, work_dir=tmp_path / "w", cfg_options=opts)
    line = next(ln for ln in str(err.value).splitlines() if "instances_trian2017" in ln)
    assert line.startswith(f"Dataset path not found: {real}/annotations/instances_trian2017.json "
                           f"(ann_file of train_dataloader.dataset). Point the config at")
    assert "make_toy_data" not in str(err.value)
    with pytest.raises(SystemExit) as stop:
        _tool("make_toy_data")(["coco", "--out", str(real)])
    assert stop.value.code == 2
    assert f"--out {real} already holds files: toy data would be written over them" in \
        capsys.readouterr().err
    assert {p: p.read_bytes() for p in (real / "annotations").glob("*.json")} == before


def test_neck_channels_not_matching_the_backbone_before_training(tmp_path, capsys):
    """The usual mistake after changing a backbone: the neck keeps the old in_channels. The
    error names the neck, its channels and the backbone's real ones, before any data is read or
    model trained (the dataset here does not even exist)."""
    opts = toy_data_options("coco", tmp_path / "no-data")
    opts["model.backbone.out_indices"] = (1, 2, 3)
    expected = (r"model\.neck \(FPN\) has in_channels=\[64, 128, 256, 384\], but the backbone "
                r"\(LSNetBackbone arch='t' out_indices=\(1, 2, 3\)\) returns maps with "
                r"\[128, 256, 384\] channels, so it needs \[128, 256, 384\]\. Set "
                r"model\.neck\.in_channels=\[128, 256, 384\]")
    with pytest.raises(PreflightError, match=expected):
        train(DET, work_dir=tmp_path / "w", cfg_options=opts)
    opts = toy_data_options("coco", tmp_path / "no-data")
    opts["model.backbone.arch"] = "s"  # LSNet-S is wider: [96, 192, 320, 448]
    status = _tool("train")([str(DET), "--work-dir", str(tmp_path / "w"), "--cfg-options",
                             *[f"{k}={v}" for k, v in opts.items()]])
    assert status == 1
    err = capsys.readouterr().err
    assert "error: model.neck (FPN) has in_channels=[64, 128, 256, 384]" in err
    assert "[96, 192, 320, 448]" in err and "Traceback" not in err
    assert not list((tmp_path / "w").rglob("*.pth"))


def test_seg_head_without_neck_checked_against_backbone_channels():
    """Without a neck, mmseg heads read the backbone maps their in_index picks."""
    from mmengine.config import Config

    from lsdense.mm.checks import check_neck_channels

    def cfg(in_channels, in_index):
        return Config(dict(default_scope="mmseg", model=dict(
            type="EncoderDecoder", backbone=dict(type="LSNetBackbone", arch="t"),
            decode_head=dict(type="FCNHead", in_channels=in_channels, in_index=in_index,
                             channels=16, num_classes=2))))

    check_neck_channels(cfg(256, 2))
    check_neck_channels(cfg([128, 256], [1, 2]))
    with pytest.raises(PreflightError, match=r"model\.decode_head \(FCNHead\) has in_channels=128, "
                                             r"but the backbone .* returns maps with \[64, 128, 256, "
                                             r"384\] channels, so it needs 256"):
        check_neck_channels(cfg(128, 2))
    with pytest.raises(PreflightError, match=r"in_index=5 but the backbone returns 4 maps"):
        check_neck_channels(cfg(128, 5))


def test_cpu_bf16_detector_evaluation_is_refused_before_building(tmp_path):
    """mmengine's ``test_cfg.fp16`` on a CPU is bf16 autocast; mmcv's CPU NMS then fails deep in
    the first batch ("expected scalar type Float but found BFloat16"), so it is a pre-flight
    error for MMDetection (MMSegmentation's bf16 evaluation is measured in test_real_mm)."""
    if torch.cuda.is_available():
        pytest.skip("the refusal is for CPU runs")
    config = QUICKSTART["det"]
    with pytest.raises(PreflightError, match=r"test_cfg\.fp16=True .* NMS"):
        run_test(config, tmp_path / "missing.pth", cfg_options={"test_cfg.fp16": True})
    with pytest.raises(PreflightError, match=r"val_cfg\.fp16=True"):
        train(config, work_dir=tmp_path, cfg_options={"val_cfg.fp16": True})


def test_damaged_checkpoint_is_a_preflight_error(tmp_path, mm_toy_data):
    """tools/test.py with an empty or foreign file: one clear error before mmengine unpickles it
    (it would fail ~500 lines deep, suggesting weights_only=False)."""
    config = QUICKSTART["det"]
    for name, data in (("empty.pth", b""), ("junk.pth", bytes(range(256)) * 4)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(PreflightError, match="empty|not a PyTorch checkpoint"):
            run_test(config, tmp_path / name, cfg_options=toy_data_options("coco", mm_toy_data / "coco"))


# ---------------------------------------------------------------- a new user's first hour (issue 22)
# tools/train.py and tools/test.py driven as a user drives them (subprocess, real files of
# ../shared/realdata copied to tmp_path): every problem of a run is one "error:" line naming the
# key, the value and the fix, all of them in the first run, and following the advice leads to a
# config that passes the pre-flight (no second round).

REAL = ROOT.parent / "shared" / "realdata"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real data not found at {REAL}")


def _run(tool: str, *args, cwd: Path, env: dict | None = None):
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    res = subprocess.run([sys.executable, str(TOOLS / f"{tool}.py"), *map(str, args)], cwd=cwd,
                         capture_output=True, text=True, timeout=600, env=env)
    errors = [ln[len("error: "):] for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    return res, errors


def _options(line: str) -> dict:
    """The ``--cfg-options`` of an error line, parsed as the tools parse them."""
    import argparse
    import shlex

    from mmengine.config import DictAction

    p = argparse.ArgumentParser()
    p.add_argument("--cfg-options", nargs="+", action=DictAction)
    words = shlex.split(line[line.index("--cfg-options"):])
    n = next((i for i, w in enumerate(words[1:], 1) if "=" not in w), len(words))
    return p.parse_args(words[:n]).cfg_options


def _preflight_problems(config, opts: dict, mode: str = "train", checkpoint=None) -> list:
    from lsdense.mm.checks import preflight
    from lsdense.mm.runner import load_config

    try:
        preflight(load_config(config, opts), mode, str(config), checkpoint=checkpoint)
    except PreflightError as err:
        return str(err).splitlines()
    return []


def test_switched_backbone_keeping_the_base_init_cfg_is_named_before_training(mm_toy_data,
                                                                               tmp_path):
    """A config switching LSNet-T to LOLViT-S without ``_delete_=True`` keeps the base config's
    LSNet-T init_cfg; with that file on disk the pre-flight loads it into the new backbone and
    names the cause and both fixes (it used to fail inside the runner with a traceback)."""
    from lsdense.mm.backbones import LSNetBackbone

    weights = tmp_path / "lsnet_t_backbone.pth"
    torch.save({"state_dict": LSNetBackbone("t").state_dict()}, weights)
    base = tmp_path / "retinanet_lsnet_t_pretrained.py"  # as the paper configs: LSNet-T weights
    base.write_text(f"_base_ = ['{DET}']\nmodel = dict(backbone=dict(init_cfg=dict(_delete_=True, "
                    f"type='Pretrained', checkpoint='{weights}')))\n")
    config = tmp_path / "retinanet_lolvit.py"
    config.write_text(
        f"_base_ = ['{base}']\n"
        "model = dict(backbone=dict(type='LOLViTBackbone', arch='s', out_indices=(1, 2, 3, 4)),\n"
        "             neck=dict(in_channels=[48, 64, 96, 128]))\n")
    problems = _preflight_problems(config, toy_data_options("coco", mm_toy_data / "coco"))
    assert len(problems) == 1, problems
    assert problems[0].startswith("model.backbone.init_cfg.checkpoint: Checkpoint matches no key "
                                  "of LOLViTBackbone")
    assert problems[0].endswith(
        "An init_cfg left from the base config's backbone when the type was switched? Write "
        "backbone=dict(_delete_=True, type='LOLViTBackbone', ...), or train from scratch: "
        "--cfg-options model.backbone.init_cfg=None.")


@needs_real
def test_first_hour_paper_config_without_data_reports_everything_at_once(tmp_path):
    """Issue 22 item 1: ``tools/train.py configs/retinanet_lsnet_t_coco.py`` with no COCO on disk
    and no network. One run names the missing data, the evaluator's ann_file (fixed at config
    load: it does not follow data_root), the unreachable ImageNet weights with the cache path to
    put them at, and one option string moving every dataset and evaluator. Following it with a
    real COCO copy whose categories are not the config's 80 gives the class fix for every
    dataset and head in one line; with both, the pre-flight passes."""
    work = tmp_path / "user"
    work.mkdir()
    offline = "http://127.0.0.1:9/lsnet_t.pth"  # nothing listens: as offline as it gets
    res, errors = _run("train", "retinanet_lsnet_t_coco.py", "--cfg-options",
                       f"model.backbone.init_cfg.checkpoint={offline}", cwd=work,
                       env={"TORCH_HOME": str(tmp_path / "torch")})
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert errors[0].startswith("Dataset path not found: data/coco/ (data_root of "
                                "train_dataloader.dataset). Make the toy coco data there")
    assert errors[1].startswith("val_evaluator.ann_file not found: "
                                "data/coco/annotations/instances_val2017.json")
    cache = tmp_path / "torch" / "hub" / "checkpoints" / "lsnet_t.pth"
    assert errors[2].startswith(f"model.backbone.init_cfg.checkpoint: Could not download "
                                f"checkpoint {offline}") and f"Put the file at {cache}" in errors[2]
    assert errors[3].startswith("To use your copy at DIR") and len(errors) == 4

    # the user's copy: real COCO files whose JSON lists only the 12 categories they use
    data = tmp_path / "mycoco"
    shutil.copytree(REAL / "coco_real", data, ignore=shutil.ignore_patterns("orig_*"))
    used = None
    for split in ("train2017", "val2017"):
        ann = data / "annotations" / f"instances_{split}.json"
        js = json.loads(ann.read_text())
        used = {a["category_id"] for a in js["annotations"]}
        js["categories"] = [c for c in js["categories"] if c["id"] in used]
        ann.write_text(json.dumps(js))
    fix = errors[3].replace("DIR", str(data))
    opts = {**_options(fix), "model.backbone.init_cfg": None}
    res, errors = _run("train", "retinanet_lsnet_t_coco.py", "--cfg-options",
                       *[f"{k}={v}" for k, v in opts.items()], cwd=work)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert len(errors) == 1 and errors[0].startswith(
        "train_dataloader.dataset: classes ['bicycle', ") and "model.bbox_head.num_classes=12" in errors[0]
    opts.update(_options(errors[0]))
    assert len(opts["test_dataloader.dataset.metainfo.classes"]) == len(used) == 12
    assert _preflight_problems("retinanet_lsnet_t_coco.py", opts, "train") == []
    assert _preflight_problems("retinanet_lsnet_t_coco.py", opts, "test") == []


@needs_real
def test_tools_test_checkpoint_fit_out_and_tta(tmp_path):
    """Issue 22 item 3: a Semantic FPN checkpoint given to a RetinaNet config stops
    tools/test.py with one line naming what does not fit (it exited 0 with bbox_mAP 0.001).
    A checkpoint of the config loads 100 % (said on stderr) and runs with mmdet's --out
    (DumpDetResults .pkl, one entry per image) and --tta (tta_pipeline: 3 scales x flip)."""
    import pickle

    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.utils import register_all_modules as det_modules
    from mmengine.config import Config
    from mmseg.registry import MODELS as SEG_MODELS
    from mmseg.utils import register_all_modules as seg_modules

    config = ROOT / "configs" / "real" / "retinanet_lsnet_t_cocoreal.py"
    det_modules(init_default_scope=False)
    seg_modules(init_default_scope=False)
    torch.manual_seed(0)
    seg = SEG_MODELS.build(Config.fromfile(str(SEG)).model)
    torch.save({"state_dict": seg.state_dict(), "meta": {}}, tmp_path / "semfpn.pth")
    det = DET_MODELS.build(Config.fromfile(str(config)).model)
    torch.save({"state_dict": det.state_dict(), "meta": {}}, tmp_path / "retinanet.pth")

    res, errors = _run("test", config, tmp_path / "semfpn.pth", "--work-dir", tmp_path / "w",
                       cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr and len(errors) == 1
    assert errors[0].startswith(f"checkpoint={tmp_path / 'semfpn.pth'} fits ")
    assert "missing neck.* (2), bbox_head.* (16); not in the model decode_head.*" in errors[0]
    assert "it was saved for another model" in errors[0]

    # load_from for training (fine-tuning): part of the model is enough, and said; none is not
    assert _preflight_problems(config, {"load_from": str(tmp_path / "semfpn.pth")}) == []
    torch.save({"state_dict": {"head.fc.weight": torch.zeros(2, 2)}}, tmp_path / "other.pth")
    problems = _preflight_problems(config, {"load_from": str(tmp_path / "other.pth")})
    assert len(problems) == 1 and problems[0].startswith(
        f"load_from={tmp_path / 'other.pth'} fits 0 of the {len(det.state_dict())} tensors (0 %)")

    out = tmp_path / "preds.pkl"
    res, errors = _run("test", config, tmp_path / "retinanet.pth", "--work-dir", tmp_path / "w",
                       "--out", out, "--tta", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    n = len(det.state_dict())
    assert f"checkpoint: {tmp_path / 'retinanet.pth'} loads {n} of the {n} tensors (100 %)" \
        in res.stderr
    preds = pickle.loads(out.read_bytes())
    assert len(preds) == 7 and all("pred_instances" in p for p in preds)
    assert preds[0]["pred_instances"]["bboxes"].shape[-1] == 4


@needs_real
def test_custom_segmentation_data_every_problem_at_once(tmp_path):
    """Issue 22 item 5: custom data in the ADE layout. A LoadAnnotations whose
    reduce_zero_label differs from its dataset's (mmseg's AssertionError), VOC masks where 0
    is a real class ('_background_') and 255 the ignored outline, read with
    reduce_zero_label=True (every class name silently shifted by one), and validation images
    saved as .png (mmseg lists no file: "need at least one array to concatenate"): three
    lines, one run; with their fixes the pre-flight passes."""
    import cv2

    src = REAL / "seg_voc_ade"
    data = tmp_path / "ADE"
    for split in ("training", "validation"):
        (data / "images" / split).mkdir(parents=True)
        shutil.copytree(src / "orig_voc_SegmentationClass" / split, data / "annotations" / split)
        for jpg in (src / "ADEChallengeData2016" / "images" / split).glob("*.jpg"):
            if split == "validation":  # the user's photos are PNG
                cv2.imwrite(str(data / "images" / split / f"{jpg.stem}.png"), cv2.imread(str(jpg)))
            else:
                shutil.copy(jpg, data / "images" / split)
    classes = tuple((src / "class_names.txt").read_text().splitlines())
    assert len(classes) == 21 and classes[0] == "_background_"
    config = tmp_path / "my_fpn.py"
    config.write_text(
        f"_base_ = ['{SEG}']\n"
        f"classes = {classes!r}\n"
        f"model = dict(decode_head=dict(num_classes=len(classes)))\n"
        f"def ds(split, rzl):\n"
        f"    return dict(_delete_=True, type='BaseSegDataset', data_root='{data}',\n"
        f"                data_prefix=dict(img_path='images/' + split,\n"
        f"                                 seg_map_path='annotations/' + split),\n"
        f"                metainfo=dict(classes=classes), reduce_zero_label=True,\n"
        f"                pipeline=[dict(type='LoadImageFromFile'),\n"
        f"                          dict(type='LoadAnnotations', reduce_zero_label=rzl),\n"
        f"                          dict(type='PackSegInputs')])\n"
        f"train_dataloader = dict(dataset=ds('training', False))\n"
        f"val_dataloader = dict(dataset=ds('validation', None))\n"
        f"test_dataloader = val_dataloader\n")
    res, errors = _run("train", config, "--work-dir", tmp_path / "w", cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    train_key, val_key = "train_dataloader.dataset", "val_dataloader.dataset"
    assert errors[0].startswith(f"{train_key}.pipeline[1] (LoadAnnotations) has reduce_zero_label="
                                f"False but the dataset reads reduce_zero_label=True")
    assert errors[1].startswith(f"{train_key}: seg maps hold values [0, 5, 9, 12, 15, 18] and 255 "
                                f"with 21 classes, but reduce_zero_label=True")
    assert "0 looks like a real class" in errors[1]
    assert errors[2] == (f"{val_key}.img_suffix='.jpg' but {data}/images/validation holds no .jpg "
                         f"file: its 1 files end in .png. Set --cfg-options "
                         f"{val_key}.img_suffix=.png")
    assert len(errors) == 3
    opts = {**_options(errors[1]), **_options(errors[2])}
    assert _preflight_problems(config, opts) == []


@pytest.mark.parametrize("family,arch,channels", [
    ("LSNet", "t", [64, 128, 256, 384]), ("LOLViT", "s", [48, 64, 96, 128]),
    ("LiSANet", "s", [64, 128, 320, 384]), ("HyLiSANet", "s", [64, 128, 320, 384])])
def test_switching_backbone_type_without_delete_names_it(tmp_path, family, arch, channels):
    """Issue 18: a config that switches the base config's ResNet to an lsdense backbone without
    ``_delete_=True`` keeps ResNet's arguments; one line names them and ``_delete_=True``, for
    every family (LOLViT gave a full traceback)."""
    config = tmp_path / f"retinanet_{family.lower()}.py"
    config.write_text(
        "_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']\n"
        "custom_imports = dict(imports=['lsdense.mmdet'], allow_failed_imports=False)\n"
        f"model = dict(backbone=dict(type='{family}Backbone', arch='{arch}'),\n"
        f"             neck=dict(in_channels={channels}))\n")
    problems = _preflight_problems(config, {"train_dataloader.dataset.data_root": str(tmp_path)})
    assert problems[0].startswith(f"model.backbone: {family}Backbone got unexpected argument(s) "
                                  f"['depth', 'num_stages', 'style']; it takes arch, ")
    assert problems[0].endswith(f"replace it with dict(_delete_=True, type='{family}Backbone', ...).")
    if family == "LOLViT":  # as a user runs it
        res, errors = _run("train", config, "--work-dir", tmp_path / "w", cwd=tmp_path)
        assert res.returncode == 1 and "Traceback" not in res.stderr
        assert errors[0] == problems[0]


@needs_real
def test_voc_per_class_table_names_the_config_classes(tmp_path):
    """Issue 22 item 5: VOC-layout data with 4 custom classes printed VOC's first 4 names
    ('aeroplane', 'bicycle', ...) in VOCMetric's table (mmdet passes dataset='voc' for a
    VOC2007 folder); the table now names the config's classes, same figures."""
    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.utils import register_all_modules as det_modules
    from mmengine.config import Config

    config = ROOT / "configs" / "real" / "retinanet_lsnet_t_vocreal.py"
    det_modules(init_default_scope=False)
    torch.manual_seed(0)
    det = DET_MODELS.build(Config.fromfile(str(config)).model)
    torch.save({"state_dict": det.state_dict(), "meta": {}}, tmp_path / "det.pth")
    res, _ = _run("test", config, tmp_path / "det.pth", "--work-dir", tmp_path / "w", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [ln.split("|")[1].strip() for ln in res.stdout.splitlines() + res.stderr.splitlines()
            if ln.startswith("| ") and "|" in ln[2:]]
    assert rows[:6] == ["class", "dog", "person", "train", "chair", "mAP"], rows


def test_tools_test_offers_every_flag_of_mmdet_and_mmseg_tools_test():
    """Issue 18: every option of mmdet's and mmseg's own tools/test.py (installed with the
    packages under .mim/tools, what `mim test` runs) is an option of ours."""
    import contextlib
    import io
    import re
    import sys

    import mmdet
    import mmseg

    def options(tool: Path) -> set:
        parse_args = runpy.run_path(str(tool), run_name="lsdense_flags")["parse_args"]
        out, argv = io.StringIO(), sys.argv
        sys.argv = [str(tool), "--help"]
        try:
            with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
                parse_args()
        finally:
            sys.argv = argv
        return set(re.findall(r"(?<![\w-])(--[a-z][a-z_-]*)", out.getvalue())) - {"--help"}

    ours = options(TOOLS / "test.py")
    assert {"--out", "--tta", "--show", "--show-dir", "--wait-time"} <= ours
    for pkg in (mmdet, mmseg):
        theirs = options(Path(pkg.__file__).parent / ".mim" / "tools" / "test.py")
        assert theirs and theirs <= ours, (pkg.__name__, theirs - ours)


def test_voc_object_names_not_in_the_config_classes_one_fix(mm_toy_data):
    """The paper VOC config (VOC's 20 classes) on a VOC-layout set naming its own classes: mmdet
    drops every object it cannot name. One line gives the data's names for every dataset
    (07 + 12 trainval, test) and the head; with it, the pre-flight passes."""
    voc = str(mm_toy_data / "voc")
    opts = {f"train_dataloader.dataset.dataset.datasets.{i}.data_root": voc for i in (0, 1)}
    opts.update({"val_dataloader.dataset.data_root": voc, "test_dataloader.dataset.data_root": voc,
                 "model.backbone.init_cfg": None})
    problems = _preflight_problems("retinanet_lsnet_t_voc0712.py", opts)
    assert len(problems) == 1 and "name classes the config lacks ('circle' x" in problems[0]
    assert "mmdet would drop those objects" in problems[0]
    fix = _options(problems[0])
    assert fix["model.bbox_head.num_classes"] == 3 and len(fix) == 5
    assert _preflight_problems("retinanet_lsnet_t_voc0712.py", {**opts, **fix}) == []
