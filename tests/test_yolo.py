"""Ultralytics integration: backbone modules in YAML, swap_backbone, checks, .pt and ONNX round trips."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ultralytics")

import torch  # noqa: E402
import yaml  # noqa: E402

import lsdense.yolo  # noqa: E402,F401
from lsdense.models import create_backbone, list_backbones  # noqa: E402
from lsdense.yolo.swap import swap_backbone  # noqa: E402
from ultralytics import YOLO  # noqa: E402
from ultralytics.nn.tasks import DetectionModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CFG = ROOT / "configs" / "yolo"
DETECT_YAMLS = sorted(CFG.glob("yolo*-*.yaml"))
TRAIN = dict(epochs=1, imgsz=64, batch=4, workers=0, plots=False, device="cpu", amp=False,
             exist_ok=True, verbose=False)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from lsdense.toydata.bdd import make_bdd100k

    return make_bdd100k(tmp_path_factory.mktemp("bdd"), num_train=8, num_val=4, seed=0, size=(64, 96))


def test_shipped_yaml_list_is_complete():
    names = {p.stem for p in DETECT_YAMLS}
    for head in ("yolov8n", "yolo11n"):
        # every registered variant but the large LiSA models and the isotropic LiSANet-I
        for bb in sorted(set(list_backbones()) - {"lisanet_b", "hylisanet_b", "lisanet_i"}):
            assert f"{head}-{bb}" in names
    for f in ("lolvit_s-coco", "lolvit_s-voc", "lolvit_x-coco", "lolvit_x-voc"):
        d = yaml.safe_load((CFG / f"{f}.yaml").read_text())
        assert (d["imgsz"], d["epochs"], d["batch"], d["optimizer"], d["lr0"], d["momentum"]) == \
            (640, 500, 256, "SGD", 0.01, 0.9)
        assert (CFG / d["model"]).is_file()


@pytest.mark.parametrize("path", DETECT_YAMLS, ids=lambda p: p.stem)
def test_shipped_detector_builds_forward_backward(path):
    model = DetectionModel(str(path), verbose=False)
    assert model.stride.tolist() == [8.0, 16.0, 32.0]
    bb = model.model[0]
    declared = [m for m in model.model if type(m).__name__ == "Index"]
    rows = yaml.safe_load(path.read_text())["backbone"][1:]
    assert [r[3][0] for r in rows] == [bb.out_channels[m.index] for m in declared]
    model.train()
    out = model(torch.rand(2, 3, 64, 64))
    assert [f.shape[-1] for f in out["feats"]] == [8, 4, 2]
    assert out["boxes"].shape[-1] == out["scores"].shape[-1] == 8 * 8 + 4 * 4 + 2 * 2
    (out["boxes"].mean() + out["scores"].mean()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, no_grad[:5]


def test_swap_renumbers_head_and_picks_levels_by_stride():
    d = swap_backbone("yolov8n.yaml", "lsnet_t")
    assert d["backbone"] == [[-1, 1, "LSNetBackbone", ["t", None, [0, 1, 2]]],
                             [0, 1, "Index", [64, 0]], [0, 1, "Index", [128, 1]],
                             [0, 1, "Index", [256, 2]]]
    # stock yolov8n: Concat P4=6 -> row 2, P3=4 -> row 1, P5 (SPPF 9) -> row 3; head rows shift by 10-4
    assert d["head"][1][0] == [-1, 2] and d["head"][4][0] == [-1, 1] and d["head"][10][0] == [-1, 3]
    assert d["head"][-1][0] == [9, 12, 15]
    assert (d["depth_multiple"], d["width_multiple"]) == (0.33, 0.25)
    p2 = swap_backbone("yolov8n-p2.yaml", "lolvit_s")  # P2 head: stride-4 level (48 channels)
    assert [r[3][0] for r in p2["backbone"][1:]] == [48, 64, 96, 128]
    with pytest.raises(ValueError, match="strides"):
        swap_backbone("yolov8n-p2.yaml", "lsnet_t")  # LSNet starts at stride 8


@pytest.mark.parametrize("stock", ["yolov8n.yaml", "yolo11n.yaml"])
def test_swap_stock_yaml_trains_one_epoch(stock, toy, tmp_path):
    out = tmp_path / f"{Path(stock).stem}-lolvit_s.yaml"
    subprocess.run([sys.executable, str(ROOT / "tools/swap_backbone.py"), stock, "--backbone",
                    "lolvit_s", "-o", str(out), "--no-check"], check=True, env=_env())
    model = YOLO(str(out))
    model.train(data=str(toy["det_yaml"]), project=str(tmp_path), name="run", **TRAIN)
    metrics = model.trainer.metrics
    for k in ("metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)"):
        assert 0.0 <= metrics[k] <= 1.0
    assert (tmp_path / "run/weights/last.pt").is_file()


def test_pretrained_bn_statistics_and_eps_survive(tmp_path):
    body = create_backbone("lolvit_s")
    g = torch.Generator().manual_seed(0)
    for m in body.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    ckpt = tmp_path / "lolvit_s.pth"
    torch.save({"state_dict": body.state_dict()}, ckpt)
    d = swap_backbone("yolov8n.yaml", "lolvit_s", pretrained=str(ckpt))
    model = DetectionModel(d, verbose=False)
    bb = model.model[0].body
    theirs = dict(body.named_modules())
    n = 0
    for name, m in bb.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.eps == theirs[name].eps == 1e-5 and m.momentum == 0.1
            assert torch.equal(m.running_mean, theirs[name].running_mean)
            n += 1
    assert n > 10
    neck_bn = next(m for m in model.model[-2].modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert neck_bn.eps == 1e-3  # Ultralytics' own layers still get Ultralytics' settings


def test_clear_errors_for_bad_yaml():
    d = swap_backbone("yolov8n.yaml", "lolvit_s")
    bad = dict(d, backbone=[[-1, 1, "LOLViTBackbon", ["s"]]] + d["backbone"][1:])
    with pytest.raises(ValueError, match=r"unknown module 'LOLViTBackbon'.*LOLViTBackbone"):
        DetectionModel(bad, verbose=False)
    bad = dict(d, backbone=[[-1, 1, "LOLViTBackbone", ["q"]]] + d["backbone"][1:])
    with pytest.raises(ValueError, match=r"Unknown arch 'q' for lolvit. Valid archs: s, x"):
        DetectionModel(bad, verbose=False)
    bad = dict(d, backbone=d["backbone"][:1] + [[0, 1, "Index", [32, 0]]] + d["backbone"][2:])
    with pytest.raises(ValueError, match=r"declares 32 channels.*has 64 channels.*\[0, 1, Index, \[64, 0\]\]"):
        DetectionModel(bad, verbose=False)
    with pytest.raises(ValueError, match="AYOLOM"):
        YOLO(str(CFG / "ayolom-n.yaml"), task="detect")


def test_clear_errors_for_bad_data(toy, tmp_path):
    from lsdense.yolo.checks import check_data_yaml, check_label_file

    y = tmp_path / "data.yaml"
    y.write_text(yaml.safe_dump({"path": str(tmp_path / "nowhere"), "train": "images/train",
                                 "val": "images/val", "names": {0: "a"}}))
    with pytest.raises(ValueError, match=r"do not exist:\n  train: .*nowhere/images/train"):
        check_data_yaml(y)
    lb = tmp_path / "a.txt"
    lb.write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 1.2\n")
    with pytest.raises(ValueError, match=r"a.txt:2: bad label row .*4 values, expected 5"):
        check_label_file(lb, nc=1)
    lb.write_text("3 0.5 0.5 0.2 0.2\n")
    with pytest.raises(ValueError, match=r"a.txt:1: .*class 3"):
        check_label_file(lb, nc=1)


def test_overrides_are_typed_by_ultralytics_parser():
    from lsdense.yolo.train import parse_overrides

    assert parse_overrides(["epochs=1", "--imgsz=64", "lr0=0.5", "amp=False", "name=007",
                            "classes=[0, 1]", "data=x.yaml", "device=None"]) == \
        {"epochs": 1, "imgsz": 64, "lr0": 0.5, "amp": False, "name": "007", "classes": [0, 1],
         "data": "x.yaml", "device": None}
    for bad in ("epochs", "epochs=", "=3"):
        with pytest.raises(ValueError, match="Expected key=value"):
            parse_overrides([bad])


def test_train_arguments_checked_by_ultralytics_before_building(capsys):
    """Unknown keys and mistyped values fail in load_train_config, with Ultralytics' own
    messages (get_cfg), before a model or dataset is touched."""
    from lsdense.yolo.train import load_train_config

    assert load_train_config("lolvit_s-coco.yaml", ["epochs=2"])[2]["epochs"] == 2
    with pytest.raises(ValueError, match=r"'epochz' is not a valid YOLO argument.*epochs"):
        load_train_config("lolvit_s-coco.yaml", ["epochz=1"])
    with pytest.raises(ValueError, match=r"'epochs' must be an int"):
        load_train_config("lolvit_s-coco.yaml", ["epochs=abc"])
    import runpy  # tools/train.py: one `error:` line and status 1, no traceback or `yolo` banner
    tool = runpy.run_path(str(ROOT / "tools" / "train.py"))["main"]
    capsys.readouterr()
    assert tool(["yolov8n-lsnet_t.yaml", "data=x.yaml", "epochz=1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "'epochz' is not a valid YOLO argument" in err
    assert "yolo TASK MODE ARGS" not in err


def test_train_main_and_cli(toy, tmp_path):
    from lsdense.yolo.cli import main as cli_main
    from lsdense.yolo.train import load_train_config, main

    setting = tmp_path / "setting.yaml"
    setting.write_text(yaml.safe_dump({"model": str(CFG / "yolov8n-lolvit_s.yaml"), "task": "detect",
                                       "data": str(toy["det_yaml"]), "epochs": 5, "imgsz": 640}))
    model, task, cfg = load_train_config(str(setting), ["epochs=1", "imgsz=64"])
    assert (task, cfg["epochs"], cfg["imgsz"]) == ("detect", 1, 64)
    metrics = main([str(setting), "epochs=1", "imgsz=64", "batch=4", "workers=0", "plots=False",
                    "device=cpu", "amp=False", f"project={tmp_path}", "name=t", "exist_ok=True"])
    assert "metrics/mAP50(B)" in metrics
    pt = tmp_path / "t/weights/last.pt"
    assert cli_main(["detect", "val", f"model={pt}", f"data={toy['det_yaml']}", "imgsz=64",
                     "batch=4", "workers=0", "plots=False", f"project={tmp_path}", "name=v",
                     "exist_ok=True"]) == 0  # the console script's exit status
    assert (tmp_path / "v").is_dir()
    # a bad argument: status 2 and one error line (Ultralytics' SyntaxError, no traceback)
    assert cli_main(["detect", "val", f"model={pt}", "epochz=1"]) == 2
    # train: the data pre-flight of tools/train.py runs first (a missing split path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(dict(yaml.safe_load(Path(toy["det_yaml"]).read_text()), val="nope")))
    assert cli_main(["detect", "train", f"model={CFG / 'yolov8n-lolvit_s.yaml'}", f"data={bad}"]) == 2


def _env(**kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(kw)
    return env


_ROUND_TRIP = r"""
import json, sys, numpy as np, torch
import lsdense.yolo
from ultralytics import YOLO
pt, data, img = sys.argv[1:4]
m = YOLO(pt)
r = m.predict(img, imgsz=64, verbose=False)[0]
val = m.val(data=data, imgsz=64, batch=4, workers=0, plots=False, verbose=False)
onnx_file = m.export(format="onnx", imgsz=64, simplify=False)
import onnxruntime as ort
net = YOLO(pt).model.float().eval()
x = torch.rand(1, 3, 64, 64)
with torch.no_grad():
    ref = net(x)[0].numpy()
sess = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
print(json.dumps({"boxes": list(r.boxes.xyxy.shape), "map50": val.box.map50,
                  "shape": list(out.shape), "ref_shape": list(ref.shape),
                  "maxdiff": float(np.abs(out - ref).max()), "scale": float(np.abs(ref).max()),
                  "backbone": type(net.model[0]).__name__}))
"""


@pytest.fixture(scope="module")
def trained_pt(toy, tmp_path_factory):
    d = tmp_path_factory.mktemp("pt")
    # LSNet-T: LOLViT's attention does not export to ONNX yet (onnxruntime shape error in FAWA)
    model = YOLO(str(CFG / "yolov8n-lsnet_t.yaml"))
    model.train(data=str(toy["det_yaml"]), project=str(d), name="run", **TRAIN)
    return d / "run/weights/last.pt"


def test_pt_round_trip_safe_load_and_onnx_parity(trained_pt, toy):
    img = next((Path(toy["root"]) / "images/100k/val").glob("*.jpg"))
    res = subprocess.run([sys.executable, "-c", _ROUND_TRIP, str(trained_pt), str(toy["det_yaml"]),
                          str(img)], capture_output=True, text=True, env=_env(ULTRALYTICS_SAFE_LOAD="1"))
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["backbone"] == "LSNetBackbone"
    assert out["boxes"][1] == 4 and 0.0 <= out["map50"] <= 1.0
    assert out["shape"] == out["ref_shape"] == [1, 5, 84]  # 4 box + 1 class, 8x8 + 4x4 + 2x2 anchors
    assert out["maxdiff"] <= 1e-4 * max(1.0, out["scale"])


@pytest.mark.parametrize("yaml", ["yolov8n-lsnet_t", "yolov8n-lolvit_s", "yolov8n-lisanet_s",
                                  "yolov8n-hylisanet_s", "ayolom-n-lolvit_s"])
def test_safe_load_allow_list_covers_every_module_of_built_models(yaml):
    """``register.PICKLED_MODULES`` / ``PICKLED_TIMM_LAYERS`` (what a weights-only load of a .pt
    allows) hold every class outside torch and Ultralytics of each family's model, in its
    training form and its export form (a prepared model may be saved too)."""
    import copy

    from lsdense.models import prepare_export
    from lsdense.yolo import AYOLOM
    from lsdense.yolo.register import _lsdense_classes

    path = str(ROOT / "configs" / "yolo" / f"{yaml}.yaml")
    model = (AYOLOM(path) if yaml.startswith("ayolom") else YOLO(path)).model
    classes = {type(m) for net in (model, prepare_export(copy.deepcopy(model).eval()))
               for m in net.modules()}
    outside = {c for c in classes if not c.__module__.startswith(("torch.", "ultralytics."))}
    assert outside and not outside - set(_lsdense_classes()), outside - set(_lsdense_classes())


def test_pt_needs_registration_only_for_safe_load(trained_pt):
    code = "from ultralytics import YOLO; import sys; print(type(YOLO(sys.argv[1]).model.model[0]).__name__)"
    ok = subprocess.run([sys.executable, "-c", code, str(trained_pt)], capture_output=True, text=True,
                        env=_env())
    assert ok.returncode == 0 and ok.stdout.strip().endswith("LSNetBackbone"), ok.stderr[-2000:]
    safe = subprocess.run([sys.executable, "-c", code, str(trained_pt)], capture_output=True, text=True,
                          env=_env(ULTRALYTICS_SAFE_LOAD="1"))
    assert safe.returncode != 0 and "outside the supported" in safe.stderr


# --- input channels (RGB+IR) and fine-tuning a .pt without the backbone weights file ---------------

REALDATA = ROOT.parent / "shared" / "realdata"
# variants without a shipped YAML: a minimal model (backbone, Index rows, Detect) per variant
_SHIPPED = {p.stem.split("-", 1)[1] for p in DETECT_YAMLS if p.stem.startswith("yolov8n-")}


def _variant_model(name: str, shipped: bool = True) -> dict:
    """The shipped yolov8n YAML of a variant (``shipped``), else backbone + its default levels +
    Detect on the last three."""
    if shipped and name in _SHIPPED:
        return yaml.safe_load((CFG / f"yolov8n-{name}.yaml").read_text())
    from lsdense.models import get_variant
    from lsdense.yolo.modules import FAMILY_MODULE

    v = get_variant(name)
    chans = create_backbone(name).out_channels  # default levels (LiSANet-I: its last block)
    rows = [[-1, 1, FAMILY_MODULE[v.family], [v.arch]]]
    rows += [[0, 1, "Index", [c, i]] for i, c in enumerate(chans)]
    last = list(range(1, len(chans) + 1))[-3:]
    return {"nc": 2, "backbone": rows, "head": [[last, 1, "Detect", ["nc"]]]}


def _randomize(module: torch.nn.Module, seed: int = 0) -> None:
    """Move every weight and BatchNorm statistic off its init, so that equality checks mean something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.is_floating_point():
                t.add_(0.02 * torch.randn(t.shape, generator=g))


# one variant per backbone row module and model class (variants of a family share their stem code)
_PER_CLASS = ["lsnet_t", "lolvit_s", "lisanet_s", "hylisanet_s", "lisanet_i"]


def test_per_class_list_covers_every_row_module_and_model_class():
    from lsdense.models import get_variant

    classes = {(get_variant(n).family, get_variant(n).model_cls) for n in list_backbones()}
    assert {(get_variant(n).family, get_variant(n).model_cls) for n in _PER_CLASS} == classes


@pytest.mark.parametrize("name", _PER_CLASS)
def test_input_channels_reach_backbone_and_pretrained_stem_is_adapted(name, tmp_path):
    """ch=4 (RGB+IR) reaches the stem; a 3-channel checkpoint loads with the stem adapted as timm does."""
    import timm
    from timm.models import adapt_input_conv

    src = create_backbone(name)
    _randomize(src)
    ckpt = tmp_path / f"{name}.pth"
    torch.save({"state_dict": src.state_dict()}, ckpt)
    d = _variant_model(name)
    d["backbone"][0][3] = [d["backbone"][0][3][0], str(ckpt), *d["backbone"][0][3][2:3]]
    model = DetectionModel(d, ch=4, verbose=False)
    body = model.model[0].body
    stem = timm.models.get_pretrained_cfg(name).first_conv  # timm's declared input conv
    assert body.in_chans == 4 and body.get_submodule(stem).in_channels == 4
    w3, w4 = src.state_dict()[f"{stem}.weight"], body.state_dict()[f"{stem}.weight"]
    assert w4.shape[1] == 4 and torch.equal(w4, adapt_input_conv(4, w3))
    # timm semantics: channels repeated (R, G, B, R) and scaled by 3/4 so the response keeps its size
    assert torch.allclose(w4, torch.cat([w3, w3[:, :1]], 1) * 0.75)
    theirs = src.state_dict()
    same = [k for k, v in body.state_dict().items() if k != f"{stem}.weight" and k in theirs]
    assert len(same) > 10 and all(torch.equal(body.state_dict()[k], theirs[k]) for k in same)
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(1, 4, 64, 64))
    assert out[0].shape[0] == 1 and torch.isfinite(out[0]).all()
    with pytest.raises(ValueError, match=r"built for 4-channel images .* got 3 channels.*'channels: 3'"):
        model(torch.rand(1, 3, 64, 64))


def test_backbone_row_in_chans_and_clear_errors(tmp_path):
    from lsdense.yolo.register import fill_backbone_rows  # noqa: F401  (public, used by the wrapper)

    base = yaml.safe_load((CFG / "yolov8n-lolvit_s.yaml").read_text())
    # a backbone after a stock layer gets that layer's channels; one input channel sums the RGB stem
    d = dict(base, backbone=[[-1, 1, "Conv", [16, 3, 1]],
                             [-1, 1, "LOLViTBackbone", ["s", "None", [2, 3, 4]]]] +
             [[1, 1, "Index", r[3]] for r in base["backbone"][1:]],
             head=[[[2, 3, 4], 1, "Detect", ["nc"]]], width_multiple=1.0)
    model = DetectionModel(d, ch=1, verbose=False)
    assert model.model[1].body.in_chans == 16 and model.stride.tolist() == [8.0, 16.0, 32.0]
    assert model.yaml["backbone"][1][3] == ["s", "None", [2, 3, 4]]  # the stored YAML stays as written
    src = create_backbone("lolvit_s")
    gray = lsdense.yolo.LOLViTBackbone("s", src.state_dict(), in_chans=1)
    assert torch.allclose(gray.body.stem.conv.weight, src.stem.conv.weight.sum(1, keepdim=True))

    row = lambda *a: dict(base, backbone=[[-1, 1, "LOLViTBackbone", list(a)]] + base["backbone"][1:])  # noqa: E731
    with pytest.raises(ValueError, match=r"declares in_chans=3, but its input has 4 channels"):
        DetectionModel(row("s", None, [2, 3, 4], 3), ch=4, verbose=False)
    with pytest.raises(ValueError, match=r"at most 4 arguments \[arch, pretrained, out_indices, in_chans\]"):
        DetectionModel(row("s", None, [2, 3, 4], 3, 0.1), verbose=False)
    assert DetectionModel(row("s", None, [2, 3, 4], 4), ch=4, verbose=False).model[0].body.in_chans == 4
    missing = tmp_path / "gone.pth"
    with pytest.raises(FileNotFoundError, match=r"row 0: LOLViTBackbone names backbone weights .*gone.pth.*null"):
        DetectionModel(row("s", str(missing), [2, 3, 4]), verbose=False)
    with pytest.raises(FileNotFoundError, match=r"gone.pth.* not found"):
        lsdense.yolo.LOLViTBackbone("s", missing)


def _four_channel_coco8(root: Path) -> Path:
    """coco8 with each photo as a 4-channel PNG (BGR + a grey 'IR' band); returns the data YAML."""
    import cv2
    import numpy as np

    src = REALDATA / "coco8_yolo"
    if not src.is_dir():
        pytest.skip(f"real data not found at {src}")
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for img in sorted((src / "images" / split).glob("*.jpg")):
            bgr = cv2.imread(str(img))
            ir = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            assert cv2.imwrite(str(root / "images" / split / f"{img.stem}.png"), np.dstack([bgr, ir]))
            label = src / "labels" / split / f"{img.stem}.txt"
            (root / "labels" / split / label.name).write_text(label.read_text())
    names = yaml.safe_load((src / "coco8.yaml").read_text())["names"]
    data = root / "coco8-rgbir.yaml"
    data.write_text(yaml.safe_dump({"path": str(root), "train": "images/train", "val": "images/val",
                                    "names": names, "channels": 4}))
    return data


def test_rgbir_train_then_finetune_pt_without_backbone_file(tmp_path):
    """Train 1 epoch on 4-channel coco8 from a backbone weights file, delete the file, fine-tune the .pt."""
    data = _four_channel_coco8(tmp_path / "coco8")
    src = create_backbone("lolvit_s")
    _randomize(src)
    weights = tmp_path / "lolvit_s-backbone.pth"
    torch.save(src.state_dict(), weights)
    d = yaml.safe_load((CFG / "yolov8n-lolvit_s.yaml").read_text())
    d["backbone"][0][3] = ["s", str(weights), [2, 3, 4]]
    cfg = tmp_path / "yolov8n-lolvit_s-rgbir.yaml"
    cfg.write_text(yaml.safe_dump(d))
    train = dict(TRAIN, data=str(data), imgsz=64, project=str(tmp_path))

    model = YOLO(str(cfg))
    model.train(name="a", **train)
    net = model.trainer.model
    stem = net.model[0].body.stem.conv
    assert stem.in_channels == 4 and net.yaml["channels"] == 4
    best = tmp_path / "a/weights/best.pt"
    saved = torch.load(best, weights_only=False)
    saved = (saved.get("ema") or saved["model"]).yaml
    assert saved["lsdense_trained"] is True and saved["backbone"][0][3] == ["s", str(weights), [2, 3, 4]]

    weights.unlink()  # the trained weights are in best.pt; the backbone file is no longer needed
    tuned = YOLO(str(best))
    tuned.train(name="b", **train)
    assert tuned.trainer.model.model[0].body.stem.conv.in_channels == 4
    best2 = tmp_path / "b/weights/best.pt"
    img = next((tmp_path / "coco8/images/val").glob("*.png"))
    res = YOLO(str(best2)).predict(str(img), imgsz=64, verbose=False)[0]
    assert res.orig_img.shape[-1] == 4 and res.boxes.xyxy.shape[-1] == 4
    val = YOLO(str(best2)).val(data=str(data), imgsz=64, batch=4, workers=0, plots=False,
                               project=str(tmp_path), name="v", verbose=False)
    assert 0.0 <= val.box.map50 <= 1.0
    with pytest.raises(FileNotFoundError, match="names backbone weights"):  # a fresh build still needs it
        YOLO(str(cfg))

    # channels: 4 over 3-channel JPEGs: named before training (Ultralytics would feed 3 channels)
    from lsdense.yolo.checks import check_data_yaml, check_image_channels

    jpeg = dict(yaml.safe_load(data.read_text()), path=str(REALDATA / "coco8_yolo"))
    with pytest.raises(ValueError, match=r"channels: 4, but .*\.jpg has 3 channels"):
        check_image_channels(check_data_yaml(jpeg))
    check_image_channels(check_data_yaml(data))


@pytest.mark.parametrize("name", ["lsnet_t", "lolvit_s"])
def test_ultralytics_fuse_folds_the_lsdense_backbone(name):
    """Ultralytics' ``fuse()`` (what AutoBackend calls for predict/val/export) folds only its own
    Conv modules; after ``import lsdense.yolo`` it also folds our backbone's BatchNorms, with the
    detector's outputs unchanged."""
    model = DetectionModel(_variant_model(name), verbose=False)
    _randomize(model)
    model.eval()
    bn = torch.nn.modules.batchnorm._BatchNorm

    def n_bn(module):
        return sum(isinstance(m, bn) for m in module.modules())
    fused_alone = n_bn(create_backbone(name).fuse())  # LSNet keeps the BN after each SKA
    assert n_bn(model.model[0]) > fused_alone
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        before = model(x)[0]
        model.fuse(verbose=False)
        after = model(x)[0]
    assert n_bn(model.model[0]) == fused_alone
    assert model.is_fused()
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    with torch.no_grad():  # every new AutoBackend (predict, then val) fuses the same model again
        model.fuse(verbose=False)
        torch.testing.assert_close(model(x)[0], after, rtol=0, atol=0)


_SAFE_LOAD = r"""
import sys, torch
import lsdense.yolo
from ultralytics import YOLO
m = YOLO(sys.argv[1]).model.eval()
with torch.no_grad():
    m(torch.rand(1, 3, 64, 64))
print(type(m.model[0]).__name__)
"""


@pytest.mark.parametrize("name", ["lsnet_t", "hylisanet_s"])
def test_pt_with_filled_eval_caches_safe_loads_and_pickles_them_empty(name, tmp_path):
    """A model evaluated before saving (Ultralytics' EMA copy after validation) holds filled
    eval caches (LSNet's attention bias, LiSA's spectra): they pickle empty, and
    ``ULTRALYTICS_SAFE_LOAD=1`` (weights_only) loads the file."""
    import io

    # every level: LSNet's attention (and its bias cache) is in the last stage only
    model = DetectionModel(_variant_model(name, shipped=False), verbose=False).eval()
    with torch.no_grad():
        model(torch.rand(1, 3, 64, 64))
        model(torch.rand(1, 3, 96, 64))
    from lsdense.models.layers import EvalCache
    caches = [c for m in model.modules() for c in vars(m).values() if isinstance(c, EvalCache)]
    assert {type(m).__name__ for m in model.modules()} >= {"Detect"}
    assert caches and sum(len(c) for c in caches) > 0
    pt = tmp_path / f"{name}.pt"
    torch.save({"model": model}, pt)
    empty = io.BytesIO()
    for c in caches:
        c.clear()
    torch.save({"model": model}, empty)
    assert pt.stat().st_size <= len(empty.getvalue()) + 4096  # no cached tensors in the file
    res = subprocess.run([sys.executable, "-c", _SAFE_LOAD, str(pt)], capture_output=True,
                         text=True, env=_env(ULTRALYTICS_SAFE_LOAD="1"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1].endswith("Backbone")


# ---------------------------------------------------------------- issues 22 and 18: the user's path


def _coco8_copy(root: Path, polygons: bool = False) -> Path:
    """The real COCO8 set copied to ``root`` with an absolute ``path``; ``polygons``: each box
    written as its 4-corner polygon (segment and OBB labels)."""
    import shutil

    shutil.copytree(REALDATA / "coco8_yolo", root)
    if polygons:
        for f in root.glob("labels/*/*.txt"):
            rows = []
            for line in f.read_text().splitlines():
                c, x, y, w, h = line.split()
                x, y, w, h = map(float, (x, y, w, h))
                x0, y0, x1, y1 = x - w / 2, y - h / 2, x + w / 2, y + h / 2
                rows.append(f"{c} {x0:.6f} {y0:.6f} {x1:.6f} {y0:.6f} {x1:.6f} {y1:.6f} {x0:.6f} {y1:.6f}")
            f.write_text("\n".join(rows) + "\n")
    d = yaml.safe_load((root / "coco8.yaml").read_text())
    out = root / "data.yaml"
    out.write_text(yaml.safe_dump(dict(d, path=str(root))))
    return out


def _user_env(tmp_path: Path) -> dict:
    """A user's shell: no pytest markers (Ultralytics sends runs of a test session elsewhere),
    fresh Ultralytics settings, offline."""
    env = _env(YOLO_CONFIG_DIR=str(tmp_path / "ultralytics-config"), YOLO_OFFLINE="1",
               YOLO_AUTOINSTALL="False", OMP_NUM_THREADS="1")
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


@pytest.mark.parametrize("stock,task", [("yolo11n-seg.yaml", "segment"), ("yolo11n-obb.yaml", "obb"),
                                        ("yolo11n-pose.yaml", "pose"), ("yolov8n.yaml", "detect")])
def test_task_is_read_from_the_model_yaml_head(stock, task, tmp_path):
    from lsdense.yolo.swap import dump_model_yaml
    from lsdense.yolo.train import guess_task, load_train_config

    model = tmp_path / f"{stock[:-5]}-lsnet_t.yaml"
    dump_model_yaml(swap_backbone(stock, "lsnet_t"), model)
    assert guess_task(str(model)) == task
    assert load_train_config(str(model), ["data=coco8.yaml"])[1] == task


def test_swapped_seg_yaml_trains_and_runs_land_under_working_dir(tmp_path):
    """Issue 22: tools/train.py on a swapped yolo11n-seg YAML trains segmentation (the task of
    its head), on real COCO8 images with polygon labels, and the run lands under the working
    directory, as Ultralytics does outside a checkout (not in the checkout holding the venv)."""
    from lsdense.yolo.swap import dump_model_yaml

    data = _coco8_copy(tmp_path / "coco8", polygons=True)
    model = tmp_path / "yolo11n-seg-lsnet_t.yaml"
    dump_model_yaml(swap_backbone("yolo11n-seg.yaml", "lsnet_t"), model)
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run([sys.executable, str(ROOT / "tools/train.py"), str(model), f"data={data}",
                        "epochs=1", "imgsz=64", "batch=4", "workers=0", "plots=False", "device=cpu",
                        "amp=False"], cwd=work, env=_user_env(tmp_path), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = work / "runs" / "segment" / "train" / "weights" / "last.pt"
    assert ckpt.is_file()
    assert YOLO(str(ckpt)).task == "segment"
    # the obb model on the same polygons is accepted by the pre-flight; boxes only are not
    from lsdense.yolo.checks import preflight

    assert preflight(data, "obb")["nc"] == 80
    with pytest.raises(ValueError, match=r"train: labels hold \d+ boxes and no polygons, but the model is "
                                         r"a segment model"):
        preflight(_coco8_copy(tmp_path / "boxes"), "segment")


def test_preflight_reports_every_problem_at_once(tmp_path):
    """Issue 22/18: one run of tools/train.py names every problem of the model YAML and the data
    (one line each: file/key, value, fix) before anything is built; rows Ultralytics accepts
    (1.0000001, a polygon in a detection file) are not problems."""
    data = _coco8_copy(tmp_path / "coco8")
    lab = tmp_path / "coco8/labels"
    with open(lab / "train/000000000009.txt", "a") as f:
        f.write("0 0.5 0.5 0.2 1.0000001\n")  # accepted by Ultralytics (1 % tolerance)
    (lab / "train/000000000030.txt").write_text("0 0.1 0.1 0.3 0.1 0.3 0.4\n")  # polygon: a box
    with open(lab / "train/000000000034.txt", "a") as f:
        f.write("99 0.5 0.5 0.2 0.2\n")
    with open(lab / "val/000000000036.txt", "a") as f:
        f.write("0 0.5 0.5 0.2\n")
    d = yaml.safe_load(data.read_text())
    data.write_text(yaml.safe_dump(dict(d, test="images/test")))
    model = tmp_path / "m.yaml"
    from lsdense.yolo.swap import dump_model_yaml

    dump_model_yaml(swap_backbone("yolov8n.yaml", "lsnet_t", pretrained="nowhere/lsnet_t.pth"), model)
    r = subprocess.run([sys.executable, str(ROOT / "tools/train.py"), str(model), f"data={data}",
                        "epochs=1", "imgsz=64"], cwd=tmp_path, env=_user_env(tmp_path),
                       capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if "cpp_extension" not in line]
    assert all(line.startswith("error: ") for line in lines), lines
    expected = [r"m\.yaml: .*LSNetBackbone names backbone weights 'nowhere/lsnet_t.pth'.*write null",
                r"data\.yaml train: .*000000000034\.txt:\d+: bad label row '99 .*class 99 .*0\.\.79",
                r"data\.yaml val: .*000000000036\.txt:\d+: .*4 values, expected 5",
                r"data\.yaml test: 'images/test' -> .*images/test does not exist: fix 'test' or 'path'"]
    import re

    for pattern in expected:
        assert sum(bool(re.search(pattern, line)) for line in lines) == 1, (pattern, lines)
    assert len(lines) == len(expected), lines  # nothing else: 000000000009 and 030 are fine


def test_pose_yaml_needs_kpt_shape_named_up_front(tmp_path):
    from lsdense.yolo.checks import preflight
    from lsdense.yolo.swap import dump_model_yaml
    from lsdense.yolo.train import guess_task

    model = tmp_path / "pose.yaml"
    dump_model_yaml(swap_backbone("yolo11n-pose.yaml", "lsnet_t"), model)
    assert guess_task(str(model)) == "pose"
    with pytest.raises(ValueError, match=r"^\S*data\.yaml kpt_shape: missing: .*kpt_shape: \[17, 3\]"):
        preflight(_coco8_copy(tmp_path / "coco8"), "pose")


def test_relative_dataset_path_resolves_as_ultralytics_and_never_from_another_copy(tmp_path, monkeypatch):
    """A relative ``path:`` is read as Ultralytics reads it (working directory, then its
    datasets_dir); when another copy sits next to the YAML, the pre-flight says so."""
    import ultralytics.utils as uu

    from lsdense.yolo.checks import preflight

    data = _coco8_copy(tmp_path / "proj/coco8")
    yml = tmp_path / "proj/data.yaml"
    yml.write_text(yaml.safe_dump(dict(yaml.safe_load(data.read_text()), path="coco8")))
    monkeypatch.chdir(tmp_path / "proj")
    assert preflight(yml)["path"] == str(tmp_path / "proj/coco8")  # relative to the working dir
    monkeypatch.chdir(tmp_path)  # now 'coco8' is only next to the YAML
    with pytest.raises(ValueError, match=r"path: 'coco8' does not exist relative to the working "
                                         r"directory .* write path: .*proj/coco8$"):
        preflight(yml)
    (tmp_path / "datasets").mkdir()
    _coco8_copy(tmp_path / "datasets/coco8")  # another copy in Ultralytics' datasets_dir
    monkeypatch.setattr(uu, "DATASETS_DIR", tmp_path / "datasets")
    with pytest.raises(ValueError, match=r"path: 'coco8' is read from .*datasets/coco8 .* another "
                                         r"copy is next to the YAML"):
        preflight(yml)


@pytest.mark.parametrize("backbone,imgsz", [("lolvit_s", 640), ("lisanet_s", 320)])
def test_info_gflops_equal_flop_counter(backbone, imgsz):
    """Issue 18: model.info() (and the training log, same get_flops) reports the GFLOPs counted
    by torch.utils.flop_counter at the real size, not thop's small-image extrapolation
    (LOLViT-S + YOLOv8n: 15.48 before, 10.64 true at 640)."""
    from lsdense.models import count_flops
    from ultralytics.utils.torch_utils import get_flops

    from ultralytics.utils.torch_utils import model_info

    stock = YOLO("yolov8n.yaml").info(imgsz=640)[-1]  # a stock model keeps thop's count
    assert 8.0 < stock < 9.5  # yolov8n: 8.7 GFLOPs (Ultralytics' table)
    net = DetectionModel(swap_backbone("yolov8n.yaml", backbone), verbose=False)
    ref = count_flops(net.eval(), torch.zeros(1, 3, imgsz, imgsz)) / 1e9
    assert model_info(net, imgsz=imgsz)[-1] == pytest.approx(ref, rel=0.01)
    assert get_flops(net, imgsz) == pytest.approx(ref, rel=0.01)
    if imgsz == 640:
        assert ref == pytest.approx(10.64, abs=0.01)


def test_swap_backbone_tool_errors_are_one_line_with_a_fitting_hint(tmp_path, capsys):
    import re
    import runpy

    tool = runpy.run_path(str(ROOT / "tools/swap_backbone.py"))["main"]
    cases = [(["yolov8n-p6.yaml", "--backbone", "lolvit_s"], r"no \[64\]\): use the YAML without -p6.*lsnet_t"),
             (["yolov8n-p2.yaml", "--backbone", "lsnet_t"], r"no \[4\]\): use the YAML without -p2.*lolvit_s"),
             (["yolov8n.yaml", "--backbone", "lolvit_q"], r"Unknown backbone 'lolvit_q'. Valid names: .*lsnet_t"),
             (["yolov8n.yaml", "--backbone", "lsnet_t", "--pretrained", "no.pth"], r"names backbone weights 'no.pth'")]
    for args, pattern in cases:
        capsys.readouterr()
        assert tool([*args, "-o", str(tmp_path / "o.yaml")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and re.search(pattern, err[0]), err
        assert not (tmp_path / "o.yaml").exists()


def test_demo_progress_lines_estimate_the_time_left():
    """Issue 22: the demo's Ultralytics trainings print the time left after each epoch (from the
    mean epoch time)."""
    import time
    from types import SimpleNamespace

    from lsdense.yolo.demo import epoch_eta, format_seconds

    lines = []
    cb = epoch_eta(lines.append, "A-YOLOM")
    start = time.time() - 30  # 3 of 12 epochs done in 30 s: 90 s left
    cb(SimpleNamespace(epoch=2, epochs=12, train_time_start=start))
    assert lines[0].startswith("A-YOLOM: epoch 3/12, about 1 min 30 s") or \
        lines[0].startswith("A-YOLOM: epoch 3/12, about 1 min 31 s"), lines
    assert [format_seconds(s) for s in (5, 75, 4000)] == ["5 s", "1 min 15 s", "1 h 6 min"]
