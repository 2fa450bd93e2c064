#!/usr/bin/env python
"""One prepared check of lsdense on a CUDA GPU; writes ``report.json`` and ``report.md``.

    python tools/gpu_check.py --official ../lsnet-official [--out work_dirs/gpu_check]

Sections (each runs on its own: a failure is reported and the rest go on):

1. ``parity/<model>`` for every registered backbone: forward and backward on CUDA against
   the CPU in fp32 (TF32 off), forward under AMP fp16 and bf16 against fp32, and
   channels_last (forward against contiguous, backward runs).
2. ``train/<quickstart>``: one AMP training iteration of each quickstart on CUDA, through
   the library's own entry points (``lsdense.mm.runner.train``: mmengine's Runner with
   ``AmpOptimWrapper``; Ultralytics' trainer with ``amp=True``), on toy data, followed by
   the frameworks' validation (mmdet's NMS / RoIAlign on CUDA tensors).
3. ``throughput/<lsnet_x>``: images/s at batch 64 and 224x224 of our classifier against the
   official LSNet graph with its own Triton SKA (``speed.py`` of THU-MIG/lsnet: BN folded,
   fp32, no grad), both from the same process.
4. ``ska/<dtype>``: our SKA (``lsdense.models.ska.ska``) forward and backward against the
   official Triton kernel (``model/ska.py``), and their forward+backward times.

The official code is imported at run time from ``--official`` (a snapshot of THU-MIG/lsnet
kept outside this repository: ``git clone https://github.com/THU-MIG/lsnet`` on a networked
machine, then copy the folder over; docs/gpu.md). Without it sections 3 and 4 are skipped.

Exit status: 0 when no check failed, 1 otherwise. Without a CUDA GPU it says so, runs a
CPU self-test (the same code paths on device 'cpu' with tiny inputs: parity of the CPU with
itself, the throughput and SKA comparisons with our own LSNet and reference SKA standing in
for the official code, the section runner, the timing helper, the report writers), writes
the reports and exits 0 (``tests/test_gpu_check.py`` runs it, so ``make test`` does).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
# Tolerances (relative to the largest magnitude of the reference, tools/benchmark.py max_rel_error)
TOL = {"fp32": 1e-3, "grad": 1e-2, "fp16": 2e-2, "bf16": 1e-1, "channels_last": 1e-4}
LSNETS = ("lsnet_t", "lsnet_s", "lsnet_b")
AMP_NAMES = {torch.float16: "fp16", torch.bfloat16: "bf16"}


# --- the section runner and the report ---------------------------------------------------

@dataclass
class Section:
    """One check: its name, ``ok`` / ``fail`` / ``skip``, measured values and any error."""

    name: str
    status: str = "ok"
    seconds: float = 0.0
    values: Dict[str, object] = field(default_factory=dict)
    error: str = ""


class Report:
    """Runs sections, each under its own try/except, and writes the JSON and markdown."""

    def __init__(self, machine: Dict[str, object]):
        self.machine = machine
        self.sections: List[Section] = []
        self.t0 = time.time()

    def run(self, name: str, fn: Callable[[], Dict[str, object]]) -> Section:
        """Run ``fn`` as section ``name``; its dict becomes the section's values.

        ``fn`` may put ``'failed': [reasons]`` in the dict (a tolerance missed) or raise
        :class:`Skip`; any other exception fails the section with its message.
        """
        sec = Section(name)
        t = time.time()
        print(f"[gpu_check] {name} ...", flush=True)
        try:
            sec.values = fn() or {}
            failed = sec.values.pop("failed", [])
            if failed:
                sec.status, sec.error = "fail", "; ".join(failed)
        except Skip as why:
            sec.status, sec.error = "skip", str(why)
        except Exception as err:  # noqa: BLE001  (one failed check must not stop the others)
            sec.status = "fail"
            sec.error = f"{type(err).__name__}: {err}".strip()[:2000]
            traceback.print_exc()
        finally:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        sec.seconds = round(time.time() - t, 2)
        print(f"[gpu_check] {name}: {sec.status} ({sec.seconds:.1f} s) {sec.error}", flush=True)
        self.sections.append(sec)
        return sec

    def summary(self) -> Dict[str, int]:
        """Counts of ok / fail / skip sections."""
        out = {"ok": 0, "fail": 0, "skip": 0}
        for s in self.sections:
            out[s.status] += 1
        return out

    def to_json(self) -> Dict[str, object]:
        return {"machine": self.machine, "summary": self.summary(),
                "seconds": round(time.time() - self.t0, 1),
                "sections": [asdict(s) for s in self.sections]}

    def write(self, out: Path) -> None:
        """``out/report.json`` and ``out/report.md``."""
        out.mkdir(parents=True, exist_ok=True)
        data = self.to_json()
        (out / "report.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
        (out / "report.md").write_text(markdown(data))


class Skip(Exception):
    """A section that cannot run here (no GPU, no official snapshot); not a failure."""


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    text = str(v)
    return text if len(text) <= 120 else text[:117] + "..."  # the JSON has it whole


def markdown(data: Dict[str, object]) -> str:
    """The report as markdown: the machine, then one table per kind of section."""
    m = data["machine"]
    lines = ["# lsdense GPU check", "",
             f"{m.get('mode')}: {m.get('gpu') or 'no GPU'}; torch {m.get('torch')} "
             f"(CUDA {m.get('torch_cuda')}), mmcv {m.get('mmcv')}, CPU {m.get('cpu')}, "
             f"lsdense {m.get('commit')}; {m.get('date')}.", "",
             "Summary: {ok} ok, {fail} failed, {skip} skipped in ".format(**data["summary"])
             + f"{data['seconds']:.0f} s.", ""]
    groups: Dict[str, List[dict]] = {}
    for s in data["sections"]:
        groups.setdefault(s["name"].split("/")[0], []).append(s)
    for group, secs in groups.items():
        keys: List[str] = []
        for s in secs:
            keys += [k for k in s["values"] if k not in keys]
        head = ["check", "status", "s", *keys, "note"]
        lines += [f"## {group}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for s in secs:
            note = s["error"].replace("|", "/").replace("\n", " ")[:300]
            cells = [s["name"], s["status"], f"{s['seconds']:.1f}",
                     *[_fmt(s["values"].get(k, "")) for k in keys], note]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"Tolerances (max |error| / max |reference|): {json.dumps(TOL)}.", ""]
    return "\n".join(lines)


def machine_info(device: str) -> Dict[str, object]:
    """What ran the check: GPU, torch/CUDA, mmcv, CPU model, git commit, date."""
    info: Dict[str, object] = {
        "mode": "GPU check" if device == "cuda" else "CPU self-test (no CUDA GPU)",
        "torch": torch.__version__, "torch_cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": platform.processor() or platform.machine()}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(ImportError):
        import mmcv
        info["mmcv"] = mmcv.__version__
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True, timeout=10).stdout.strip()
    return info


# --- timing --------------------------------------------------------------------------------

def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_per_call(fn: Callable[[], object], device: str, warmup: int = 3, iters: int = 10,
                  min_seconds: float = 0.0) -> float:
    """Mean seconds of ``fn()`` after ``warmup`` calls (synchronised on CUDA); runs at least
    ``iters`` calls and at least ``min_seconds`` in all."""
    for _ in range(warmup):
        fn()
    sync(device)
    n, t0 = 0, time.perf_counter()
    while n < iters or time.perf_counter() - t0 < min_seconds:
        fn()
        n += 1
    sync(device)
    return (time.perf_counter() - t0) / n


# --- 1. parity -------------------------------------------------------------------------------

def _outputs(out) -> List[torch.Tensor]:
    from benchmark import _outputs as flatten  # tools/benchmark.py
    return flatten(out)


def _loss(out) -> torch.Tensor:
    return sum(o.float().square().mean() for o in _outputs(out))


def _grad_error(test: nn.Module, ref: nn.Module) -> float:
    """Worst relative error over parameters of ``test``'s gradients against ``ref``'s."""
    worst = 0.0
    for (name, p), (_, q) in zip(test.named_parameters(), ref.named_parameters()):
        if q.grad is None:
            continue
        if p.grad is None:
            raise AssertionError(f"{name}: no gradient on the device, one on the reference")
        scale = q.grad.abs().max().clamp_min(1e-8)
        worst = max(worst, float((p.grad.cpu() - q.grad).abs().max() / scale))
    return worst


def parity(name: str, device: str, size: int = 224, batch: int = 2,
           amp_dtypes: Sequence[torch.dtype] = (torch.float16, torch.bfloat16)) -> Dict[str, object]:
    """Forward/backward of backbone ``name`` on ``device`` against the CPU, AMP and
    channels_last errors. Returns the errors and ``failed`` (tolerances missed)."""
    from benchmark import max_rel_error  # tools/benchmark.py
    from lsdense.models import create_backbone

    torch.manual_seed(0)
    ref = create_backbone(name).train()
    test = copy.deepcopy(ref).to(device)
    x = torch.randn(batch, 3, size, size)
    xd = x.to(device)
    out_ref = ref(x)
    _loss(out_ref).backward()
    out = test(xd)
    _loss(out).backward()
    sync(device)
    vals: Dict[str, object] = {
        "fp32": max_rel_error([o.cpu() for o in _outputs(out)], out_ref),
        "grad": _grad_error(test, ref)}
    test.eval()
    with torch.no_grad():
        ref32 = test(xd)
        for dtype in amp_dtypes:
            with torch.autocast(device_type=device, dtype=dtype):
                low = test(xd)
            vals[AMP_NAMES[dtype]] = max_rel_error([o.float() for o in _outputs(low)], ref32)
        cl = test.to(memory_format=torch.channels_last)
        vals["channels_last"] = max_rel_error(cl(xd.contiguous(memory_format=torch.channels_last)),
                                              ref32)
    cl.train().zero_grad()
    _loss(cl(xd.contiguous(memory_format=torch.channels_last))).backward()
    if any(p.grad is None for p in cl.parameters() if p.requires_grad):
        vals.setdefault("failed", []).append("channels_last backward left a parameter without a gradient")
    vals["failed"] = vals.get("failed", []) + [
        f"{k} error {vals[k]:.3g} > {TOL[k]}" for k in TOL if k in vals and vals[k] > TOL[k]]
    return vals


# --- 2. one AMP training iteration per quickstart ------------------------------------------

def train_mm(config: str, kind: str, work: Path, batch: int = 4, amp: bool = True) -> Dict[str, object]:
    """One AMP iteration of an mm quickstart on CUDA (mmengine Runner), then its validation."""
    from lsdense.mm.demo import toy_data_options
    from lsdense.mm.runner import train

    data = work / "data" / kind
    if not (data / ".complete").is_file():
        if kind == "coco":
            from lsdense.toydata.coco import make_coco as make
        else:
            from lsdense.toydata.ade import make_ade20k as make
        make(data, num_train=batch, num_val=batch)
        (data / ".complete").write_text("ok\n")
    opts = toy_data_options(kind, data, workers=0)
    opts["train_dataloader.batch_size"] = batch
    if kind == "coco":  # epoch-based: one epoch of `batch` images is one iteration
        opts.update({"train_cfg.max_epochs": 1, "train_cfg.val_interval": 1,
                     "val_dataloader.batch_size": batch, "test_dataloader.batch_size": batch,
                     "default_hooks.checkpoint.interval": 1})
    else:  # the ADE20K quickstart is iteration-based (its validation takes one image a batch)
        opts.update({"train_cfg.max_iters": 1, "train_cfg.val_interval": 1,
                     "default_hooks.checkpoint.interval": 1})
    runner = train(config, work_dir=work / Path(config).stem, amp=amp, cfg_options=opts)
    wrapper = type(runner.optim_wrapper).__name__
    loss = float(runner.message_hub.get_scalar("train/loss").current())
    vals = {"iterations": runner.iter, "loss": loss, "optim_wrapper": wrapper,
            "device": str(next(runner.model.parameters()).device)}
    failed = []
    if amp and wrapper != "AmpOptimWrapper":
        failed.append(f"optim wrapper {wrapper}, not AmpOptimWrapper")
    if not torch.isfinite(torch.tensor(loss)):
        failed.append(f"loss {loss}")
    vals["failed"] = failed
    return vals


def train_yolo(model_yaml: str, work: Path, multitask: bool, batch: int = 8, device: object = 0,
               amp: bool = True) -> Dict[str, object]:
    """One AMP iteration of an Ultralytics quickstart on GPU 0 (its own trainer), then its
    validation. Ultralytics' AMP self-check downloads yolo26n.pt, which a machine without
    network cannot: it is replaced by ``True`` here (AMP's error is measured in ``parity``)."""
    import ultralytics.engine.trainer as trainer_mod
    from ultralytics import YOLO

    import lsdense.yolo  # noqa: F401  (registers our modules with Ultralytics)
    from lsdense.cfg import yolo_yaml
    from lsdense.toydata.bdd import make_bdd100k
    from lsdense.yolo import AYOLOM

    data = make_bdd100k(work / "bdd100k", num_train=batch, num_val=2, seed=0, size=(96, 160))
    model = (AYOLOM if multitask else YOLO)(str(yolo_yaml(model_yaml)))
    saved, trainer_mod.check_amp = trainer_mod.check_amp, lambda m: True
    try:
        model.train(data=str(data["multitask_yaml" if multitask else "det_yaml"]), epochs=1,
                    imgsz=128, batch=batch, workers=0, device=device, amp=amp, plots=False,
                    exist_ok=True, project=str(work / "runs"), name=Path(model_yaml).stem,
                    verbose=False, warmup_epochs=0, mosaic=0.0, close_mosaic=0, val=True)
    finally:
        trainer_mod.check_amp = saved
    tr = model.trainer
    losses = tr.tloss if isinstance(tr.tloss, dict) else {}  # mean loss items of the epoch
    loss = float(sum(float(v) for v in losses.values())) if losses else float("nan")
    vals = {"amp": bool(tr.amp), "loss": loss, "device": str(tr.device), "iterations": len(tr.train_loader),
            "metrics": {k: round(float(v), 4) for k, v in (tr.metrics or {}).items()
                        if isinstance(v, (int, float))}}
    failed = [] if bool(tr.amp) == amp and torch.isfinite(torch.tensor(loss)) else [
        f"amp {bool(tr.amp)}, loss {loss}"]
    vals["failed"] = failed
    return vals


# name -> fn(work_dir, gpu): one training iteration, AMP on GPU 0 when ``gpu`` else fp32 on the CPU
QUICKSTARTS: Dict[str, Callable[[Path, bool], Dict[str, object]]] = {
    "retinanet_lsnet_t": lambda w, gpu: train_mm("quickstart/retinanet_lsnet_t_toycoco.py", "coco",
                                                 w, amp=gpu),
    "mask-rcnn_lsnet_t": lambda w, gpu: train_mm("quickstart/mask-rcnn_lsnet_t_toycoco.py", "coco",
                                                 w, amp=gpu),
    "fpn_lsnet_t": lambda w, gpu: train_mm("quickstart/fpn_lsnet_t_toyade20k.py", "ade20k", w, amp=gpu),
    "yolov8n-lsnet_t": lambda w, gpu: train_yolo("yolov8n-lsnet_t.yaml", w, multitask=False,
                                                 device=0 if gpu else "cpu", amp=gpu),
    "ayolom-n-lolvit_s": lambda w, gpu: train_yolo("ayolom-n-lolvit_s.yaml", w, multitask=True,
                                                   device=0 if gpu else "cpu", amp=gpu),
}


# --- 3./4. the official LSNet code -----------------------------------------------------------

@contextlib.contextmanager
def _timm_glue_for_official():
    """The official ``model/lsnet.py`` is written for timm 0.5: its ``@register_model`` fails
    on timm 1.0 (``hf_hub`` in its cfgs) and would replace our ``lsnet_t`` in timm's registry.
    While it is imported, ``register_model`` leaves functions as they are (nothing registered)."""
    import timm.models._registry as reg
    import timm.models.registry as shim
    saved = reg.register_model, shim.register_model
    reg.register_model = shim.register_model = lambda fn: fn
    try:
        yield
    finally:
        reg.register_model, shim.register_model = saved


def _build_plain(model_cls, variant, pretrained=False, default_cfg=None, **kwargs):
    """Stands in for timm's ``build_model_with_cfg`` in the official module: the model
    class with the variant's numbers, no pretrained weights (as ``speed.py`` times it)."""
    return model_cls(**kwargs)


def load_official(path: Optional[Path]):
    """The official package ``model`` (lsnet.py, Triton ska.py) and ``utils.replace_batchnorm``
    from a THU-MIG/lsnet snapshot, under private module names.

    Raises:
        Skip: no snapshot given, or no CUDA (its SKA is a Triton kernel).
    """
    if path is None:
        raise Skip("no --official snapshot of THU-MIG/lsnet (docs/gpu.md says how to get one)")
    if not torch.cuda.is_available():
        raise Skip("the official SKA is a Triton kernel: CUDA only")
    path = Path(path)
    if not (path / "model" / "lsnet.py").is_file():
        raise FileNotFoundError(f"{path}/model/lsnet.py not found: --official must be the root "
                                f"of a THU-MIG/lsnet checkout")
    name = "_official_lsnet"
    if name not in sys.modules:
        with _timm_glue_for_official():
            spec = importlib.util.spec_from_file_location(
                name, path / "model" / "__init__.py", submodule_search_locations=[str(path / "model")])
            pkg = importlib.util.module_from_spec(spec)
            sys.modules[name] = pkg
            spec.loader.exec_module(pkg)
            importlib.import_module(f"{name}.lsnet")
            spec = importlib.util.spec_from_file_location(f"{name}_utils", path / "utils.py")
            utils = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(utils)
            pkg.replace_batchnorm = utils.replace_batchnorm
            sys.modules[f"{name}.lsnet"].build_model_with_cfg = _build_plain
    pkg = sys.modules[name]
    return pkg, sys.modules[f"{name}.lsnet"], sys.modules[f"{name}.ska"]


def throughput(name: str, official, batch: int = 64, size: int = 224, device: str = "cuda",
               warmup: int = 10, iters: int = 30, min_seconds: float = 2.0) -> Dict[str, object]:
    """Images/s of our LSNet classifier (BN folded) and the official graph (its
    ``replace_batchnorm``, Triton SKA), fp32, no grad, as the official ``speed.py``."""
    import timm

    import lsdense  # noqa: F401

    pkg, lsnet_mod, _ = official
    ours = timm.create_model(name, num_classes=1000).to(device).eval()
    ours = ours.fuse() if hasattr(ours, "fuse") else ours
    theirs = getattr(lsnet_mod, name)(num_classes=1000)
    pkg.replace_batchnorm(theirs)
    theirs = theirs.to(device).eval()
    x = torch.randn(batch, 3, size, size, device=device)
    vals: Dict[str, object] = {"batch": batch, "size": size}
    with torch.no_grad():
        for label, model in (("ours", ours), ("official", theirs)):
            sec = time_per_call(lambda: model(x), device, warmup, iters, min_seconds)
            vals[f"{label} img/s"] = round(batch / sec, 1)
    vals["ours/official"] = round(vals["ours img/s"] / vals["official img/s"], 3)
    return vals


def ska_vs_official(official, dtype: torch.dtype, batch: int = 16, channels: int = 256,
                    size: int = 28, device: str = "cuda", iters: int = 50) -> Dict[str, object]:
    """Our SKA forward and backward against the official Triton kernel, and both timings."""
    from lsdense.models.ska import ska

    _, _, ska_mod = official
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, channels, size, size, device=device, generator=g).to(dtype)
    w = torch.randn(batch, channels // 8, 9, size, size, device=device, generator=g).to(dtype)
    go = torch.randn(batch, channels, size, size, device=device, generator=g).to(dtype)
    res = {}
    for label, fn in (("ours", ska), ("official", ska_mod.SkaFn.apply)):
        xi, wi = x.clone().requires_grad_(), w.clone().requires_grad_()
        out = fn(xi, wi)
        out.backward(go)
        res[label] = (out.float(), xi.grad.float(), wi.grad.float())

        def step(fn=fn):
            xi.grad = wi.grad = None
            fn(xi, wi).backward(go)
        res[label + "_ms"] = 1e3 * time_per_call(step, device, warmup=min(5, iters), iters=iters)

    def rel(a, b):
        return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    vals: Dict[str, object] = {
        "shape": f"{batch}x{channels}x{size}x{size}",
        "out": rel(res["ours"][0], res["official"][0]),
        "grad_x": rel(res["ours"][1], res["official"][1]),
        "grad_w": rel(res["ours"][2], res["official"][2]),
        "ours fwd+bwd ms": round(res["ours_ms"], 3), "official fwd+bwd ms": round(res["official_ms"], 3)}
    vals["failed"] = [f"{k} error {vals[k]:.3g} > {tol}" for k in ("out", "grad_x", "grad_w")
                      if vals[k] > tol]
    return vals


# --- the two modes ---------------------------------------------------------------------------

def gpu_check(report: Report, models: Sequence[str], official_path: Optional[Path],
              work: Path, parts: Sequence[str]) -> None:
    """Every section on CUDA."""
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 parity means fp32, not TF32
    torch.backends.cudnn.allow_tf32 = False
    if "parity" in parts:
        for name in models:
            report.run(f"parity/{name}", lambda name=name: parity(name, "cuda"))
    if "train" in parts:
        for name, fn in QUICKSTARTS.items():
            report.run(f"train/{name}", lambda fn=fn: fn(work, True))
    if {"throughput", "ska"} & set(parts):
        holder: Dict[str, object] = {}

        def _load():
            holder["official"] = load_official(official_path)
            return {"path": str(official_path)}
        if report.run("official/load", _load).status != "ok":
            return
        official = holder["official"]
        if "throughput" in parts:
            for name in LSNETS:
                report.run(f"throughput/{name}", lambda name=name: throughput(name, official))
        if "ska" in parts:
            for dtype in (torch.float32, torch.float16):
                report.run(f"ska/{str(dtype).split('.')[-1]}",
                           lambda dtype=dtype: ska_vs_official(official, dtype))


def _stand_in_official():
    """For the self-test: the shape of :func:`load_official`'s answer, built from our own code
    (our LSNet and reference SKA in place of the official graph and Triton kernel)."""
    from types import SimpleNamespace

    import timm

    import lsdense  # noqa: F401
    from lsdense.models.ska import ska_reference

    pkg = SimpleNamespace(replace_batchnorm=lambda m: m.fuse())
    lsnet_mod = SimpleNamespace(lsnet_t=lambda num_classes: timm.create_model(
        "lsnet_t", num_classes=num_classes, ska_impl="reference"))
    ska_mod = SimpleNamespace(SkaFn=SimpleNamespace(apply=ska_reference))
    return pkg, lsnet_mod, ska_mod


def cpu_self_test(report: Report, models: Sequence[str], work: Path, train_on_cpu: bool = False) -> None:
    """The GPU check's own code paths on the CPU with tiny inputs (no GPU numbers);
    ``train_on_cpu``: the quickstart iterations too, in fp32 on the CPU (a few minutes)."""
    for name in models:
        report.run(f"parity/{name}", lambda name=name: parity(
            name, "cpu", size=64, batch=2, amp_dtypes=(torch.bfloat16,)))

    def timing():
        x = torch.randn(64, 64)
        s = time_per_call(lambda: x @ x, "cpu", warmup=1, iters=5)
        return {"matmul_64_ms": round(1e3 * s, 4), "failed": [] if s > 0 else ["no time measured"]}
    report.run("selftest/timing", timing)

    def failing():
        raise RuntimeError("a failing check is reported, the others go on")
    sec = report.run("selftest/runner", failing)
    # the runner's own test: the failure was caught and recorded; report it as passed
    sec.status, sec.values, sec.error = (("ok", {"caught": sec.error}, "") if sec.status == "fail"
                                         else ("fail", {}, "the runner did not catch a failure"))
    report.run("official/load", lambda: load_official(None))
    stand_in = _stand_in_official()
    report.run("throughput/lsnet_t", lambda: throughput(
        "lsnet_t", stand_in, batch=2, size=64, device="cpu", warmup=1, iters=2, min_seconds=0))
    report.run("ska/float32", lambda: ska_vs_official(
        stand_in, torch.float32, batch=2, channels=16, size=8, device="cpu", iters=2))

    def needs_gpu():
        raise Skip("needs a CUDA GPU")
    for name, fn in QUICKSTARTS.items():
        report.run(f"train/{name}", (lambda fn=fn: fn(work, False)) if train_on_cpu else needs_gpu)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line; returns the exit status."""
    from lsdense.models import list_backbones

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="See docs/gpu.md.")
    p.add_argument("--out", type=Path, default=Path("work_dirs/gpu_check"),
                   help="folder for report.json, report.md and the training runs")
    p.add_argument("--official", type=Path, default=os.environ.get("LSDENSE_OFFICIAL_LSNET"),
                   help="root of a THU-MIG/lsnet snapshot (or $LSDENSE_OFFICIAL_LSNET)")
    p.add_argument("--models", nargs="+", default=None,
                   help="backbones for the parity checks (default: all ten on GPU; "
                        "lsnet_t lolvit_s in the CPU self-test)")
    parts = ("parity", "train", "throughput", "ska")
    p.add_argument("--only", nargs="+", choices=parts, default=list(parts))
    p.add_argument("--self-test", action="store_true",
                   help="run the CPU self-test even on a GPU machine")
    p.add_argument("--train-on-cpu", action="store_true",
                   help="CPU self-test: also one fp32 iteration of each quickstart on the CPU")
    args = p.parse_args(argv)
    for k, v in {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "False",
                 "YOLO_CONFIG_DIR": str(args.out.resolve() / "ultralytics-config")}.items():
        os.environ.setdefault(k, v)  # before Ultralytics' first import
    gpu = torch.cuda.is_available() and not args.self_test
    report = Report(machine_info("cuda" if gpu else "cpu"))
    if gpu:
        print(f"[gpu_check] {report.machine['gpu']}: the full check (about 5 minutes on an H100)")
        gpu_check(report, args.models or list_backbones(), args.official, args.out, args.only)
    else:
        print("[gpu_check] no CUDA GPU available: running the CPU self-test only "
              "(nothing is measured on a GPU)")
        cpu_self_test(report, args.models or ["lsnet_t", "lolvit_s"], args.out, args.train_on_cpu)
    report.write(args.out)
    s = report.summary()
    print(f"[gpu_check] {s['ok']} ok, {s['fail']} failed, {s['skip']} skipped; "
          f"{args.out / 'report.md'}")
    if not gpu:
        return 0 if s["fail"] == 0 else 1
    return 1 if s["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
