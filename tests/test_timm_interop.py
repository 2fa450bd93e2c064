"""timm's scripts and extractors on every lsdense model (issue 18), and eval caches that follow
every weight change.

* the arguments timm's scripts pass to ``create_model`` (train.py, validate.py, benchmark.py,
  inference.py, onnx_export.py of timm 1.0.x), defaults and user flags, on every model;
* ``features_only`` with every ``feature_cls`` equal to the default extractor;
* ``tools/timm_run.py`` running a script as timm's are run (a stand-in: timm's scripts are
  not in its wheel or sdist; see tests/timm_suite/timm_script_standin.py);
* an EMA written through ``p.data`` (no version-counter bump) reaches the eval caches.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

import lsdense  # noqa: F401  (registers the models)

REPO = Path(__file__).resolve().parents[1]
PHOTOS = Path("/work/shared/realdata/photos")
MODELS = timm.list_models(module=["lsnet", "lolvit", "lisanet"])
NO_BATCHNORM = {"lisanet_s", "lisanet_b", "lisanet_i"}  # LayerNorm only
# create_model's keyword arguments as each script passes them with its defaults (None values
# are dropped by create_model itself), then with the flags a user sets
SCRIPT_KWARGS = {
    "train.py": dict(pretrained=False, in_chans=3, num_classes=None, drop_rate=0.0,
                     drop_path_rate=None, drop_block_rate=None, global_pool=None,
                     bn_momentum=None, bn_eps=None, scriptable=False, checkpoint_path=""),
    "validate.py": dict(pretrained=False, num_classes=None, in_chans=3, global_pool=None,
                        scriptable=False),
    "benchmark.py": dict(num_classes=None, in_chans=3, global_pool="fast", scriptable=False,
                         drop_rate=0.0, drop_path_rate=None, drop_block_rate=None),
    "inference.py / onnx_export.py": dict(num_classes=None, in_chans=3, pretrained=False,
                                          checkpoint_path="", exportable=True),
    "train.py flags": dict(num_classes=7, in_chans=3, drop_rate=0.25, drop_path_rate=0.1,
                           drop_block_rate=0.0, global_pool="avgmax", scriptable=True,
                           no_jit=True),
}


@pytest.mark.parametrize("name", MODELS)
def test_every_model_takes_what_timms_scripts_pass(name):
    """Construction and attributes (the values are checked on
    test_timm_script_flags_change_the_outputs_as_timms_models_do)."""
    for script, kwargs in SCRIPT_KWARGS.items():
        model = timm.create_model(name, **kwargs)
        assert model.num_classes == (kwargs["num_classes"] or 1000), script
        assert model.head_drop.p == kwargs.get("drop_rate", 0.0), script
        assert model.global_pool == (kwargs.get("global_pool") or "avg"), script
    # --bn-momentum / --bn-eps reach every BatchNorm; models without one say so
    if name in NO_BATCHNORM:
        with pytest.raises(ValueError, match=rf"^{name}: bn_momentum=0.01, bn_eps=0.001 is not "
                                             rf"supported: {name} has no BatchNorm layer"):
            timm.create_model(name, bn_momentum=0.01, bn_eps=1e-3)
    else:
        model = timm.create_model(name, bn_momentum=0.01, bn_eps=1e-3)
        bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert bns and {(m.momentum, m.eps) for m in bns} == {(0.01, 1e-3)}
    with pytest.raises(ValueError, match=rf"^{name}: drop_block_rate=0.1 is not supported: "
                                         rf"{name} has no DropBlock layers"):
        timm.create_model(name, drop_block_rate=0.1)


@pytest.mark.parametrize("name", ["lsnet_t", "hylisanet_s"])
def test_timm_script_flags_change_the_outputs_as_timms_models_do(name):
    """--gp avgmax: the mean of the average- and max-pooled map; --drop: dropout before the
    classifier only (eval output unchanged); --num-classes."""
    x = torch.randn(2, 3, 64, 64)
    torch.manual_seed(0)
    model = timm.create_model(name, **SCRIPT_KWARGS["train.py flags"]).eval()
    torch.manual_seed(0)
    plain = timm.create_model(name, num_classes=7, global_pool="avgmax").eval()
    with torch.no_grad():
        feats = model.forward_features(x)
        pooled = 0.5 * (feats.mean((2, 3)) + feats.amax((2, 3)))
        torch.testing.assert_close(model.forward_head(feats, pre_logits=True), pooled)
        torch.testing.assert_close(model(x), plain(x))
        assert model(x).shape == (2, 7)


def test_lsnet_drop_rate_is_dropout_before_the_classifier():
    """drop_rate=0 (timm's default) is the official model; > 0 drops features in training."""
    torch.manual_seed(0)
    plain = timm.create_model("lsnet_t").eval()
    torch.manual_seed(0)
    dropped = timm.create_model("lsnet_t", drop_rate=0.5)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(dropped.eval()(x), plain(x))  # eval: identity
        feats = dropped.forward_features(x)
        dropped.train()
        pre = dropped.forward_head(feats, pre_logits=True)
    assert 0.3 < (pre == 0).float().mean() < 0.7


@pytest.mark.parametrize("name", MODELS)
def test_every_feature_cls_matches_the_default_extractor(name):
    """'dict', 'list', 'hook', 'fx' and 'getter' return the default features_only maps
    (LiSANet-I: 'dict'/'list' are refused in one line; its hook / graph nodes are the block
    outputs before the shared final norm, docs/timm.md)."""
    x = torch.randn(1, 3, 64, 64)
    torch.manual_seed(0)
    ref = timm.create_model(name, features_only=True).eval()
    with torch.no_grad():
        expected = ref(x)
        post = ref.model.stages[0].norm if name == "lisanet_i" else torch.nn.Identity()
        # the B variants share their S sibling's class: the extractors that failed there
        kinds = ("dict", "list", "hook", "fx", "getter")
        if name.endswith("_b"):
            kinds = ("dict", "list")
        for cls in kinds:
            torch.manual_seed(0)
            if name == "lisanet_i" and cls in ("dict", "list"):
                with pytest.raises(ValueError, match=rf"^lisanet_i: features_only with "
                                                     rf"feature_cls='{cls}' is not supported"):
                    timm.create_model(name, features_only=True, feature_cls=cls)
                continue
            model = timm.create_model(name, features_only=True, feature_cls=cls).eval()
            out = model(x)
            out = list(out.values()) if isinstance(out, dict) else out
            assert len(out) == len(expected), cls
            for got, want in zip(out, expected):
                torch.testing.assert_close(post(got) if cls in ("hook", "fx") else got, want)
    # a subset with the module-rewriting extractor keeps only the levels it needs
    if name != "lisanet_i":
        two = timm.create_model(name, features_only=True, feature_cls="dict", out_indices=(0, 1))
        assert list(two(x)) == ["0", "1"]


def test_timm_run_runs_a_script_with_the_models_registered(tmp_path):
    """tools/timm_run.py SCRIPT ARGS: the script runs as __main__ with its arguments and the
    lsdense models in timm's registry; weights in .safetensors through timm's own
    load_checkpoint; predictions equal the model's in this process. (benchmark.py's
    arguments: test_every_model_takes_what_timms_scripts_pass.)"""
    from safetensors.torch import save_file

    data = tmp_path / "data"
    for cls, photo in (("a", "bus.jpg"), ("b", "skimage_coffee.png")):
        (data / cls).mkdir(parents=True)
        shutil.copy(PHOTOS / photo, data / cls / photo)
    torch.manual_seed(0)
    model = timm.create_model("lsnet_t", num_classes=5)
    for p in model.parameters():  # trained-looking weights, not the zero-initialised biases
        p.data.add_(torch.randn_like(p) * 0.05)
    weights = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
    out = tmp_path / "preds.json"
    standin = REPO / "tests" / "timm_suite" / "timm_script_standin.py"
    res = subprocess.run([sys.executable, str(REPO / "tools" / "timm_run.py"), str(standin),
                          "--model", "lsnet_t", "--num-classes", "5", "--checkpoint", str(weights),
                          "--data-dir", str(data), "--img-size", "96", "--out", str(out)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(out.read_text())
    assert got["input_size"] == [3, 96, 96]
    config = timm.data.resolve_data_config({"img_size": 96}, model=model)
    transform = timm.data.create_transform(**config)
    from PIL import Image
    images = torch.stack([transform(Image.open(data / c / p).convert("RGB"))
                          for c, p in (("a", "bus.jpg"), ("b", "skimage_coffee.png"))])
    with torch.no_grad():
        assert got["preds"] == model.eval()(images).argmax(-1).tolist()
    res = subprocess.run([sys.executable, str(REPO / "tools" / "timm_run.py"), "validate.py"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        "timm_run: validate.py is not a file; give the path of one of timm's scripts (they are "
        "in the timm repository, not in its wheel)."]


@pytest.mark.parametrize("name", ["lsnet_t", "lolvit_s", "lisanet_s", "hylisanet_s", "lisanet_i"])
def test_ema_written_through_data_reaches_the_eval_caches(name):
    """An EMA / mean-teacher update as p.data.mul_().add_() (no version-counter bump): the next
    eval forward equals a fresh model loaded with the same weights (the caches of LSNet's
    attention bias and LiSA's kernel spectra were stale: off by 3.5e-3 / 5.4)."""
    x = torch.randn(1, 3, 96, 80)  # not the training grid: the cached values are resized ones
    torch.manual_seed(0)
    model = timm.create_model(name).eval()
    torch.manual_seed(1)
    teacher = timm.create_model(name)
    for p in teacher.parameters():
        p.data.add_(torch.randn_like(p) * 0.05)
    with torch.no_grad():
        before = model(x)  # fills the caches
        for p, q in zip(model.parameters(), teacher.parameters()):
            p.data.mul_(0.5).add_(q.data, alpha=0.5)
        fresh = timm.create_model(name).eval()
        fresh.load_state_dict(model.state_dict())
        after = model(x)
        torch.testing.assert_close(after, fresh(x), rtol=0, atol=1e-6)
        assert not torch.allclose(after, before, atol=1e-3)
