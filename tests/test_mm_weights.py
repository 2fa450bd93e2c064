"""Weights in MMDetection / MMSegmentation runs: ``Pretrained`` from an http(s) URL through
torch.hub's cache (a local server started here; offline afterwards), backbone keys in the
official layout both ways (our detector checkpoints as backbone weights), and resuming every mmengine parameter scheduler under weights-only loading."""
from __future__ import annotations

import functools
import http.server
import inspect
import sys
import threading
from pathlib import Path

import pytest
import torch

pytest.importorskip("mmdet")
pytest.importorskip("mmseg")

from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import lsdense.mmdet  # noqa: E402,F401
from lsdense.mm.backbones import (HyLiSANetBackbone, LiSANetBackbone, LiSANetIBackbone,  # noqa: E402
                                   LOLViTBackbone, LSNetBackbone)
from lsdense.models.checkpoint import url_cache_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _randomised(sd):
    g = torch.Generator().manual_seed(0)
    return {k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone())
            for k, v in sd.items()}


# ---------------------------------------------------------------- Pretrained from a URL


class _Server:
    """A static file server on 127.0.0.1 (an ephemeral port) in a daemon thread, counting
    requests."""

    def __init__(self, root: Path):
        self.requests = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.httpd.timeout = 10
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture()
def hub_dir(tmp_path, monkeypatch):
    """torch.hub's cache in a temporary folder; no proxy for the local server."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(old)


def test_pretrained_url_downloads_once_into_hub_cache_and_loads_offline(tmp_path, hub_dir):
    served = tmp_path / "www"
    served.mkdir()
    src = _randomised(LSNetBackbone("t").state_dict())
    torch.save({"model": src}, served / "lsnet_t_dense.pth")
    torch.save({"model": src, "extra": Path("x")}, served / "evil.pth")  # a class global

    with _Server(served) as srv:
        url = f"{srv.url}/lsnet_t_dense.pth"
        m = LSNetBackbone("t", init_cfg=dict(type="Pretrained", checkpoint=url))
        m.init_weights()
        assert srv.requests == ["/lsnet_t_dense.pth"]
        cached = hub_dir / "checkpoints" / "lsnet_t_dense.pth"
        assert url_cache_path(url) == cached and cached.is_file()
        assert all(torch.equal(v, src[k]) for k, v in m.state_dict().items())
        assert "blocks4.3.mixer.m.attention_biases" in src
        # weights-only also for downloads: a file with a class global is refused
        bad = LSNetBackbone("t", init_cfg=dict(type="Pretrained", checkpoint=f"{srv.url}/evil.pth"))
        with pytest.raises(ValueError, match=r"(?s)weights_only=True.*trusted=True"):
            bad.init_weights()
        # a missing file: a clear error naming the URL and the cache path, not a path error
        gone = LSNetBackbone("t", init_cfg=dict(type="Pretrained", checkpoint=f"{srv.url}/no.pth"))
        with pytest.raises(ConnectionError, match=r"Could not download checkpoint http://127\.0\.0"
                                                  r"\.1:\d+/no\.pth: HTTP Error 404.*Put the file at "):
            gone.init_weights()

    # server gone (offline): the warm cache still serves the same URL, with no request
    n = len(srv.requests)
    again = LSNetBackbone("t", init_cfg=dict(type="Pretrained", checkpoint=url))
    again.init_weights()
    assert len(srv.requests) == n
    assert torch.equal(again.state_dict()["patch_embed.0.c.weight"], src["patch_embed.0.c.weight"])
    # the same loader outside mm (timm / Ultralytics users): URL and prefix
    from lsdense.models import create_backbone, load_checkpoint

    plain = create_backbone("lsnet_t")
    res = load_checkpoint(plain, url, prefix=None)
    assert res.missing_keys == [] and torch.equal(plain.blocks3[2].mixer.conv.c.weight,
                                                  src["blocks3.2.mixer.conv.c.weight"])
    # offline and not cached: says so, with the cache path to put the file at
    cold = LSNetBackbone("t", init_cfg=dict(type="Pretrained", checkpoint=url.replace(
        "lsnet_t_dense", "lsnet_s_dense")))
    with pytest.raises(ConnectionError, match=f"Put the file at {hub_dir}/checkpoints/lsnet_s_dense"):
        cold.init_weights()


def test_pretrained_unsupported_scheme_is_named():
    m = LSNetBackbone("t", init_cfg=dict(type="Pretrained", checkpoint="open-mmlab://lsnet_t"))
    with pytest.raises(ValueError, match=r"'open-mmlab://lsnet_t' uses a scheme lsdense does not "
                                         r"read; give a local path or an http\(s\):// URL"):
        m.init_weights()


# ---------------------------------------------------------------- official key layout


def test_mm_backbone_is_the_core_model_with_official_keys():
    """The registered mm class is the core model class (no wrapper), so its state-dict keys
    and shapes are the official LSNet dense backbone's (listing in tests/golden)."""
    from lsdense.models.lisanet import LiSANet, LiSANetI
    from lsdense.models.lolvit import LOLViT
    from lsdense.models.lsnet import LSNet
    from mmengine.model import BaseModule

    golden = torch.load(ROOT / "tests" / "golden" / "lsnet_t_official_outputs.pt")["t_det"]["keys"]
    official = {k: tuple(s) for k, s in golden if not k.endswith("attention_bias_idxs")}
    ours = {k: tuple(v.shape) for k, v in LSNetBackbone("t").state_dict().items()}
    assert ours == official
    assert issubclass(LSNetBackbone, LSNet) and issubclass(LSNetBackbone, BaseModule)
    assert isinstance(LOLViTBackbone("s"), LOLViT)
    assert isinstance(HyLiSANetBackbone("s"), LiSANet)
    iso = LiSANetIBackbone("i")
    assert isinstance(iso, LiSANetI) and iso.out_channels == [192]
    with pytest.raises(TypeError, match=r"LiSANetBackbone builds LiSANet models; arch 'i' is a "
                                        r"LiSANetI: use type='LiSANetIBackbone'\."):
        LiSANetBackbone("i")


def _detector(out_indices=None):
    cfg = Config.fromfile(str(ROOT / "configs" / "quickstart" / "retinanet_lsnet_t_toycoco.py"))
    init_default_scope("mmdet")
    from mmdet.registry import MODELS

    if out_indices is not None:
        cfg.model.backbone.out_indices = out_indices
    return MODELS.build(cfg.model)


def test_detector_checkpoint_is_backbone_weights_and_back(tmp_path):
    """A detector checkpoint as tools/train.py writes it (mmengine's save_checkpoint) has
    official backbone keys and initialises a new run's backbone with or without
    prefix='backbone.'; an official-layout backbone file loads into a detector with
    mmengine's own loader (load_from / resume) without conversion."""
    from mmengine.runner.checkpoint import load_checkpoint as mm_load
    from mmengine.runner.checkpoint import save_checkpoint

    det = _detector()
    det.load_state_dict(_randomised(det.state_dict()))
    path = tmp_path / "epoch_1.pth"
    save_checkpoint({"meta": {"epoch": 1}, "state_dict": det.state_dict()}, str(path))
    saved = torch.load(path, map_location="cpu")["state_dict"]
    assert "backbone.patch_embed.0.c.weight" in saved and not any(".body." in k for k in saved)
    for prefix in ("backbone.", "backbone", None):
        m = LSNetBackbone("t", init_cfg=dict(type="Pretrained", checkpoint=str(path), prefix=prefix))
        m.init_weights()
        for k, v in m.state_dict().items():
            assert torch.equal(v, saved[f"backbone.{k}"]), (prefix, k)

    # the other way: a backbone-only file (official layout) into a detector, mmengine's loader
    backbone_file = tmp_path / "backbone.pth"
    torch.save({"state_dict": {k: v for k, v in saved.items() if k.startswith("backbone.")}},
               backbone_file)
    fresh = _detector()
    mm_load(fresh, str(backbone_file), map_location="cpu")
    want = det.backbone.state_dict()
    assert "blocks4.3.mixer.m.attention_biases" in want
    assert [k for k, v in fresh.backbone.state_dict().items() if not torch.equal(v, want[k])] == []


def test_prefix_that_no_key_has_is_named(tmp_path):
    torch.save({"state_dict": {"backbone.patch_embed.0.c.weight": torch.zeros(16, 3, 3, 3)}},
               tmp_path / "x.pth")
    m = LSNetBackbone("t", init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "x.pth"),
                                         prefix="model.backbone"))
    with pytest.raises(ValueError, match=r"No key of the checkpoint starts with prefix "
                                         r"'model\.backbone\.'; its keys start with backbone\."):
        m.init_weights()


# ---------------------------------------------------------------- schedulers and resume


def _scheduler_args(name: str) -> dict:
    """Arguments each of mmengine's schedulers needs (the rest keep their defaults)."""
    args = {"by_epoch": False}
    if name.endswith("ParamScheduler"):
        args["param_name"] = "lr"
    if name.startswith("Step"):
        args["step_size"] = 2
    elif name.startswith("MultiStep"):
        args["milestones"] = [2, 4]
    elif name.startswith("Exponential"):
        args["gamma"] = 0.9
    elif name.startswith("CosineAnnealing"):
        args["T_max"] = 8
    elif name.startswith("OneCycle"):
        args.update(eta_max=0.5, total_steps=10)
    elif name.startswith("CosineRestart"):
        args.update(periods=[3, 5], restart_weights=[1, 0.5], eta_min=0.0)
    elif name.startswith("ReduceOnPlateau"):  # mmengine: by epoch only
        args.update(monitor="loss", patience=0, factor=0.5, by_epoch=True)
    return args


def _every_mmengine_scheduler():
    import mmengine.optim  # noqa: F401
    from mmengine.registry import PARAM_SCHEDULERS

    return sorted(n for n, c in PARAM_SCHEDULERS.module_dict.items()
                  if c.__module__.startswith("mmengine."))


@pytest.mark.parametrize("name", _every_mmengine_scheduler())
def test_every_mmengine_scheduler_state_survives_weights_only_round_trip(name, tmp_path):
    """Save a stepped scheduler's state as mmengine does, load it weights-only, and the
    restored scheduler continues exactly as the original."""
    from mmengine.registry import PARAM_SCHEDULERS

    cls = PARAM_SCHEDULERS.get(name)

    def make():
        p = torch.nn.Parameter(torch.zeros(2))
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
        return opt, cls(opt, **_scheduler_args(name))

    def step(opt, sched, i):
        opt.step()
        if "ReduceOnPlateau" in name:
            sched.step({"loss": 1.0})  # never improves: the value drops
        else:
            sched.step()

    opt, sched = make()
    for i in range(3):
        step(opt, sched, i)
    path = tmp_path / "ckpt.pth"
    torch.save({"param_schedulers": [sched.state_dict()], "optimizer": opt.state_dict()}, path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    opt2, sched2 = make()
    opt2.load_state_dict(ckpt["optimizer"])
    sched2.load_state_dict(ckpt["param_schedulers"][0])
    key = "momentum" if "Momentum" in name else "lr"
    for i in range(3, 7):
        step(opt, sched, i)
        step(opt2, sched2, i)
        assert opt2.param_groups[0][key] == pytest.approx(opt.param_groups[0][key], abs=1e-12)


def test_weights_only_getattr_stays_restricted(tmp_path):
    """The allow-list maps pickle's getattr only to the lookups mmengine files make;
    any other getattr in a file is refused."""
    from mmengine.optim.scheduler import OneCycleParamScheduler

    from lsdense.mm.safe_load import mmengine_class_function

    assert mmengine_class_function(OneCycleParamScheduler, "_annealing_cos") is \
        inspect.getattr_static(OneCycleParamScheduler, "_annealing_cos").__func__

    class Sneaky:
        def __reduce__(self):
            return getattr, (OneCycleParamScheduler, "step")

    torch.save({"x": Sneaky()}, tmp_path / "bad.pth")
    with pytest.raises(Exception, match="refused getattr"):
        torch.load(tmp_path / "bad.pth", weights_only=True)
    assert getattr not in torch.serialization.get_safe_globals()


_RUNNER_SCRIPT = r'''
import sys, torch
from torch import nn
from torch.utils.data import Dataset
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
import lsdense.mmdet  # the allow-list, as a config's custom_imports gives it

class Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)
    def forward(self, inputs, data_samples=None, mode="tensor"):
        y = self.fc(torch.stack(inputs))
        return dict(loss=(y ** 2).mean()) if mode == "loss" else y

class Data(Dataset):
    def __len__(self):
        return 8
    def __getitem__(self, i):
        return dict(inputs=torch.full((2,), float(i) / 8))

class Interrupt(Hook):  # a killed job: stops after iteration `at` (its checkpoint written)
    def __init__(self, at):
        self.at = at
    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 >= self.at:
            raise KeyboardInterrupt

class LrLog(Hook):  # the lr each iteration trained with
    def __init__(self):
        self.lrs = []
    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs.append(runner.optim_wrapper.get_lr()["lr"][0])

def run(work, iters, resume, sched, name, interrupt=None):
    runner = Runner(
        model=Toy(), work_dir=work, experiment_name=f"{name}_{iters}_{int(resume)}_{work[-3:]}",
        train_dataloader=dict(dataset=Data(), sampler=dict(type="DefaultSampler", shuffle=False),
                              batch_size=2, num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=iters),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9)),
        param_scheduler=sched, resume=resume,
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=2, by_epoch=False),
                           logger=dict(type="LoggerHook", interval=1)),
        randomness=dict(seed=0))
    log = LrLog()
    runner.register_hook(log, priority="LOWEST")
    if interrupt:
        runner.register_hook(Interrupt(interrupt), priority="LOWEST")
        try:
            runner.train()
        except KeyboardInterrupt:
            return log.lrs, runner.iter
    runner.train()
    return log.lrs, runner.iter

scheds = {  # the scheduler whose state holds a function (the issue's case)
    "OneCycleLR": [dict(type="OneCycleLR", eta_max=0.5, total_steps=6, by_epoch=False)],
}
for name, sched in scheds.items():
    work = sys.argv[1] + "/" + name
    run(work, 6, False, sched, name, interrupt=3)  # killed in iteration 3 of 6 (iter_2.pth kept)
    lr_resumed, it = run(work, 6, True, sched, name)
    lr_straight, _ = run(work + "_straight", 6, False, sched, name)
    assert it == 6 and len(lr_resumed) == 4, (it, lr_resumed)
    assert len(set(lr_straight)) >= 3, lr_straight  # the schedule does move
    assert all(abs(a - b) < 1e-12 for a, b in zip(lr_resumed, lr_straight[2:])), \
        (name, lr_resumed, lr_straight)
    print("RESUMED", name, lr_resumed)
'''


def test_runner_resumes_onecycle_under_weights_only(tmp_path):
    """mmengine's Runner writes the schedulers' functions into its checkpoints and resumes
    with torch.load's weights-only default: the resumed run ends where an uninterrupted one
    does."""
    import subprocess

    script = tmp_path / "run.py"
    script.write_text(_RUNNER_SCRIPT)
    res = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                         text=True, timeout=300, cwd=ROOT,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "RESUMED OneCycleLR" in res.stdout
    assert "Unsupported global" not in res.stderr
