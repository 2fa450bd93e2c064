#!/usr/bin/env python
"""Benchmark lsdense models beside their peers: parameters, GMACs, latency, ratios.

Every lsdense model is timed in one interleaved loop with the timm models a user
would pick instead (``--peers``, default per model: DEFAULT_PEERS,
timm ``features_only``), and every YOLO YAML (``--yolo``) beside the stock Ultralytics
YAML it swaps a backbone into; the ratio printed is peer time / our time (> 1: ours
is faster). ``--backend`` / ``--dtype`` add paths, each with its max relative error
against fp32 eager of the same model.

Examples:
    python tools/benchmark.py --models lisanet_s hylisanet_s --sizes 224 640
    python tools/benchmark.py --models lsnet_t --peers resnet18 --backend eager onnxruntime \\
        --dtype float32 bfloat16
    python tools/benchmark.py --models none --yolo configs/yolo/yolov8n-lolvit_s.yaml --sizes 640
    python tools/benchmark.py --models all --plot docs/latency_vs_gmacs.png --markdown t.md

One latency loop (``lsdense.models.time_interleaved``,
``torch.utils.benchmark.Timer``): every path of one comparison (our model, its peers,
fused / unfused builds, other backends or dtypes) is called in turn, call by call, so
all see the same machine state; ratios from one run are what the docs report.

FLOPs come from ``lsdense.models.count_flops`` (``FlopCounterMode`` plus each custom
operator's ``uncounted_flops``). Figures are multiply-accumulates (GMACs), the unit the
papers call "FLOPs". This is a tool, kept outside the package as timm keeps its
``benchmark.py``; tests import it from ``tools/``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from lsdense.cfg import yolo_yaml
from lsdense.models import count_flops, create_backbone, get_variant, list_backbones
from lsdense.models.forms import prepare_export, using_form
from lsdense.models.profiling import time_interleaved

# timm models (features_only) a user would pick instead, per lsdense variant: the nearest
# in FLOPs at 224 among the models issue 11 names, and the papers' own comparisons
# (LiSANet: Swin-T and PVTv2-B2).
# Peer name of LSNet's official inference graph (:func:`build_official`).
OFFICIAL_PEER = "official"

DEFAULT_PEERS: Dict[str, Tuple[str, ...]] = {
    "lsnet_t": ("mobilenetv3_large_100", "efficientvit_m4"),
    "lsnet_s": ("efficientvit_m4", "repvit_m1_1"),
    "lsnet_b": ("repvit_m1_1", "resnet18"),
    "lolvit_s": ("mobilenetv3_large_100",),
    "lolvit_x": ("mobilenetv3_large_100", "efficientvit_m4"),
    "lisanet_s": ("swin_tiny_patch4_window7_224", "pvt_v2_b2"),
    "lisanet_b": ("swin_tiny_patch4_window7_224", "pvt_v2_b2"),
    "hylisanet_s": ("pvt_v2_b2", "swin_tiny_patch4_window7_224"),
    "hylisanet_b": ("pvt_v2_b2", "swin_tiny_patch4_window7_224"),
    "lisanet_i": ("resnet18",),
}
BACKENDS = ("eager", "compile", "onnxruntime", "openvino", "ncnn")
# the runtimes of docs/deploy.md, timed on the CPU in float32 from the model's export form
RUNTIMES = ("onnxruntime", "openvino", "ncnn")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
ONNX_OPSET = 17


@dataclass
class BenchResult:
    """One timed path of one comparison (a row of the table)."""

    model: str
    input_size: int
    batch: int
    fused: bool
    params_m: float
    gmacs: float
    median_ms: float
    min_ms: float
    throughput: float
    device: str
    threads: int
    role: str = "ours"  # "ours" or "peer"
    backend: str = "eager"
    dtype: str = "float32"
    max_rel_err: Optional[float] = None  # vs fp32 eager of the same build, max |a-b| / max |b|
    group: str = ""  # the comparison (our model) this row was timed in
    repeats: int = 0
    times_ms: List[float] = field(default_factory=list, repr=False)


# --- measuring ------------------------------------------------------------------

def _outputs(out: Any) -> List[torch.Tensor]:
    """Flatten a model output (tensor, tuple/list, dict) into a list of float tensors."""
    if isinstance(out, torch.Tensor):
        return [out.float()]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _outputs(o)]
    import numpy as np
    if isinstance(out, np.ndarray):
        return [torch.from_numpy(out).float()]
    return []


def max_rel_error(out: Any, ref: Any) -> float:
    """``max |out - ref| / max |ref|`` over all output tensors (0 when both are empty)."""
    a, b = _outputs(out), _outputs(ref)
    if len(a) != len(b):
        raise ValueError(f"path returned {len(a)} tensors, the fp32 eager reference {len(b)}")
    err = 0.0
    for x, y in zip(a, b):
        if x.shape != y.shape:
            raise ValueError(f"output shape {tuple(x.shape)} != reference {tuple(y.shape)}")
        err = max(err, float((x - y).abs().max() / y.abs().max().clamp_min(1e-12)))
    return err


# --- building -------------------------------------------------------------------

def build(name: str, fused: bool, device: torch.device) -> nn.Module:
    """Dense backbone for timing: fused (Conv-BN folded, fast ops) or unfused (reference ops)."""
    kwargs = {}
    if get_variant(name).family == "lsnet" and not fused:
        kwargs["ska_impl"] = "reference"  # the unfold SKA, as the official code on CPU
    model = create_backbone(name, **kwargs).to(device).eval()
    return model.fuse() if fused else model


def check_peer(name: str, peer: str) -> None:
    """Raise ``ValueError`` unless ``peer`` can be timed beside lsdense variant ``name``: a
    timm model name, or :data:`OFFICIAL_PEER` beside an LSNet variant."""
    if peer == OFFICIAL_PEER:
        if get_variant(name).family != "lsnet":
            raise ValueError(f"peer {OFFICIAL_PEER!r} is LSNet's official graph, a peer of LSNet "
                             f"variants only; {name} is not one: time it in a separate run")
        return
    import timm
    if not timm.is_model(peer):
        raise ValueError(f"peer {peer!r}: not a timm model name (see timm.list_models())")


def build_official(name: str, device: torch.device) -> nn.Module:
    """The official LSNet inference graph of variant ``name`` (the :data:`OFFICIAL_PEER`).

    What the official code (THU-MIG/lsnet ``model/lsnet.py``) runs for inference on a CPU:
    Conv-BN pairs and the BN-Linear head folded (its ``replace_batchnorm``, which our
    ``fuse()`` matches layer for layer), and the SKA through ``F.unfold``: its SKA kernel is
    CUDA-only (``model/ska.py``), so on a CPU it has the plain-PyTorch form, ours
    :func:`~lsdense.models.ska.ska_reference`. Only the SKA path differs from our fused build.

    Raises:
        ValueError: ``name`` is not an LSNet variant (only LSNet has official code to compare).
    """
    check_peer(name, OFFICIAL_PEER)
    return create_backbone(name, ska_impl="reference").to(device).eval().fuse()


def build_peer(name: str, size: int, fused: bool, device: torch.device) -> nn.Module:
    """A timm model as a dense backbone (``features_only``), no pretrained weights.

    ``img_size`` is passed where the model takes it (Swin's windows are built for it);
    ``fused`` re-parameterises it as timm's deployment does
    (``timm.utils.model.reparameterize_model``: RepViT / EfficientViT Conv-BN folding).
    """
    import timm
    from timm.utils.model import reparameterize_model
    try:
        model = timm.create_model(name, features_only=True, pretrained=False, img_size=size)
    except TypeError:  # models without an img_size argument
        model = timm.create_model(name, features_only=True, pretrained=False)
    model = model.to(device).eval()
    return reparameterize_model(model) if fused else model


def build_yolo(cfg: str, fused: bool, device: torch.device) -> nn.Module:
    """An Ultralytics detection model from a YAML (ours via ``lsdense.yolo``, or stock)."""
    import lsdense.yolo  # noqa: F401  (registers our backbone modules with Ultralytics)
    from ultralytics import YOLO
    from ultralytics.nn.modules import Detect
    model = YOLO(cfg).model.to(device).float().eval()
    for m in model.modules():  # the head returns its predictions only, as Ultralytics exports
        if isinstance(m, Detect):  # it (tracers take no (tensor, list) output): every path alike
            m.export, m.format = True, "onnx"
    # Ultralytics' fuse() folds our backbones too once lsdense.yolo is imported (register())
    return model.fuse(verbose=False) if fused else model


def stock_yolo_peer(cfg: str) -> str:
    """The stock Ultralytics YAML our YOLO YAML swaps a backbone into.

    ``yolov8n-lolvit_s.yaml`` -> ``yolov8n.yaml``; ``yolo11n-lsnet_t.yaml`` -> ``yolo11n.yaml``.
    """
    stem = Path(cfg).stem
    if "-" not in stem:
        raise ValueError(f"{cfg}: expected '<stock model>-<lsdense backbone>.yaml' "
                         "(e.g. yolov8n-lolvit_s.yaml) to find its stock peer; pass --yolo-peer")
    return stem.split("-", 1)[0] + ".yaml"


def _compile(model: nn.Module, x: torch.Tensor) -> Callable:
    """``torch.compile`` set up for inference as PyTorch's CPU inference guide recommends:
    inductor with freezing (parameters folded in as constants, convolution weights
    pre-packed for oneDNN) and, on the CPU, the C++ wrapper (no Python between kernels).
    Compiled here, on ``x``, while those settings apply (they are read at compile time)."""
    import torch._inductor.config as inductor_config
    net = torch.compile(model, dynamic=False)  # static graphs: one per input shape
    with torch.inference_mode(), inductor_config.patch(freezing=True,
                                                       cpp_wrapper=x.device.type == "cpu"):
        net(x)
    return net


def _onnxruntime(model: nn.Module, x: torch.Tensor, threads: int) -> Callable:
    """Export ``model`` at ``x``'s shape (its export form, ``prepare_export``; TorchScript
    exporter, opset 17) and wrap an ORT session."""
    import onnxruntime as ort
    import warnings
    path = Path(tempfile.mkdtemp(prefix="lsdense_bench_")) / "model.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(prepare_export(copy.deepcopy(model)), (x,), str(path), dynamo=False,
                          opset_version=ONNX_OPSET,
                          input_names=["x"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # ORT's pool spin-waits after each run by default, stealing the cores from the next path
    # of the interleaved loop (every other path timed 25-30 % slower beside it, 2 threads)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    return lambda: sess.run(None, feed)


def _openvino(model: nn.Module, x: torch.Tensor, threads: int) -> Callable:
    """OpenVINO's PyTorch frontend on the export form, compiled for the CPU in f32 (its
    default on CPUs with bf16 units is bf16), ``threads`` inference threads, latency hint."""
    import warnings

    import openvino as ov
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        ov_model = ov.convert_model(prepare_export(copy.deepcopy(model)), example_input=(x,))
    compiled = ov.Core().compile_model(ov_model, "CPU", {
        "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    feed = x.numpy()
    return lambda: list(request.infer([feed]).values())


@contextlib.contextmanager
def _quiet_fds(log: Path):
    """Send file descriptors 1 and 2 (a C++ library's prints too) to ``log`` meanwhile."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log, "w") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            for fd, old in ((1, saved[0]), (2, saved[1])):
                os.dup2(old, fd)
                os.close(old)


def _ncnn(model: nn.Module, x: torch.Tensor, threads: int) -> Callable:
    """pnnx -> ncnn with fp32 weights and fp32 arithmetic (pnnx's default weights are fp16,
    docs/deploy.md), ``threads`` threads, batch 1 (ncnn's Mat holds one image)."""
    import ncnn
    import pnnx
    if x.shape[0] != 1:
        raise ValueError("--backend ncnn runs batch 1 (an ncnn Mat is one image): use --batch 1")
    out = Path(tempfile.mkdtemp(prefix="lsdense_bench_"))
    files = {k: str(out / v) for k, v in dict(
        ncnnparam="m.ncnn.param", ncnnbin="m.ncnn.bin", ncnnpy="m_ncnn.py",
        pnnxparam="m.pnnx.param", pnnxbin="m.pnnx.bin", pnnxpy="m_pnnx.py",
        pnnxonnx="m.pnnx.onnx").items()}
    with contextlib.chdir(out), torch.no_grad(), _quiet_fds(out / "pnnx.log"):
        # (pnnx writes debug files to the cwd and its passes to the process's stdout)
        pnnx.export(prepare_export(copy.deepcopy(model)), str(out / "m.pt"), (x,), fp16=False,
                    **files)
    net = ncnn.Net()
    net.opt.num_threads = threads
    for flag in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic",
                 "use_bf16_storage"):
        setattr(net.opt, flag, False)
    net.load_param(files["ncnnparam"])
    net.load_model(files["ncnnbin"])
    image = ncnn.Mat(x[0].numpy())
    inp, outs = net.input_names()[0], net.output_names()

    def run():
        ex = net.create_extractor()
        ex.input(inp, image)
        return [np.array(ex.extract(n)[1])[None] for n in outs]
    return run


def make_path(model: nn.Module, x: torch.Tensor, backend: str, dtype: str, threads: int
              ) -> Callable[[], Any]:
    """``fn()`` running ``model`` on ``x`` through ``backend`` in ``dtype``.

    Raises:
        ValueError: an unknown backend / dtype, or a runtime (onnxruntime, OpenVINO, ncnn)
            with bfloat16 or on a non-CPU tensor (they are timed in float32 on the CPU).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if backend in RUNTIMES:
        if dtype != "float32":
            raise ValueError(f"--backend {backend} runs float32 only (its CPU kernels for these "
                             f"graphs are float32); use --dtype float32")
        if x.device.type != "cpu":
            raise ValueError(f"--backend {backend} is timed on the CPU: use --device cpu")
        return {"onnxruntime": _onnxruntime, "openvino": _openvino, "ncnn": _ncnn}[backend](
            model, x, threads)
    if dtype != "float32":
        model, x = copy.deepcopy(model).to(DTYPES[dtype]), x.to(DTYPES[dtype])
    net = _compile(model, x) if backend == "compile" else model

    def run():
        with torch.inference_mode():
            return net(x)
    return run


# --- comparisons ----------------------------------------------------------------

@dataclass
class _Entry:
    label: str
    name: str
    role: str
    fused: bool
    model: nn.Module


def compare(entries: Sequence[_Entry], x: torch.Tensor, backends: Sequence[str] = ("eager",),
            dtypes: Sequence[str] = ("float32",), threads: int = 2, warmup: int = 5,
            repeats: int = 20, group: str = "", size: Optional[int] = None,
            device: str = "cpu") -> List[BenchResult]:
    """Time every entry x backend x dtype interleaved in one loop; one row per path.

    Each path's error is against fp32 eager of the same entry (the reference all other
    paths of that entry are checked against). With ``'compile'`` among ``backends`` it
    starts with ``torch._dynamo.reset()``, which drops every graph compiled before in the
    process (a caller's own compiled models recompile at their next call).
    """
    torch.set_num_threads(threads)
    if "compile" in backends:  # earlier groups are done: their graphs would count against
        torch._dynamo.reset()  # dynamo's recompile limit (over it, calls run eager silently)
    fns, meta, errors = {}, {}, {}
    for e in entries:
        with torch.inference_mode():
            ref = e.model(x)
        for backend in backends:
            for dtype in dtypes:
                key = f"{e.label}|{backend}|{dtype}"
                fn = make_path(e.model, x, backend, dtype, threads)
                errors[key] = 0.0 if (backend, dtype) == ("eager", "float32") \
                    else max_rel_error(fn(), ref)
                fns[key], meta[key] = fn, (e, backend, dtype)
    times = time_interleaved(fns, repeats, warmup, threads)
    results = []
    flops_cache: Dict[str, Tuple[float, float]] = {}
    for key, (e, backend, dtype) in meta.items():
        if e.label not in flops_cache:
            params = sum(p.numel() for p in e.model.parameters())
            flops_cache[e.label] = (params / 1e6, count_flops(e.model, x[:1]) / 2e9)
        params_m, gmacs = flops_cache[e.label]
        med = statistics.median(times[key])
        results.append(BenchResult(
            e.name, size or x.shape[-1], x.shape[0], e.fused, params_m, gmacs, med,
            min(times[key]), x.shape[0] * 1e3 / med, device, threads, e.role, backend, dtype,
            errors[key], group, repeats, times[key]))
    return results


def benchmark(models: Iterable[str], sizes: Sequence[int], batch: int = 1, threads: int = 2,
              device: str = "cpu", fused: Sequence[bool] = (True,), warmup: int = 5,
              repeats: int = 20, log: Optional[Callable[[str], None]] = print,
              peers: Optional[Dict[str, Sequence[str]]] = None,
              backends: Sequence[str] = ("eager",), dtypes: Sequence[str] = ("float32",),
              yolo: Sequence[str] = (), yolo_peers: Optional[Dict[str, str]] = None
              ) -> List[BenchResult]:
    """One comparison per (model, size): our builds, the model's peers, every backend/dtype.

    Args:
        models: lsdense variants (dense backbones).
        sizes: square input sizes.
        fused: our builds to time (``True`` fused, ``False`` unfused reference ops).
        peers: timm peer names per model (default :data:`DEFAULT_PEERS`; ``{}`` none).
        backends, dtypes: paths each entry is timed through.
        yolo: Ultralytics YAMLs of ours; each is timed beside its stock YAML
            (:func:`stock_yolo_peer`, or ``yolo_peers[cfg]``).

    Returns:
        One :class:`BenchResult` per timed path.

    Raises:
        ValueError: a peer that cannot be timed beside its model (:func:`check_peer`), before
            anything is built or timed; a model refusing an input size (its own message).
    """
    torch.set_num_threads(threads)
    dev = torch.device(device)
    peers = DEFAULT_PEERS if peers is None else peers
    for name in models:
        for p in peers.get(name, ()):
            check_peer(name, p)
    results: List[BenchResult] = []
    groups: List[Tuple[str, Callable[[int], List[_Entry]]]] = []
    for name in models:
        def entries(size, name=name):
            out = [_Entry(f"{name}{'' if f else ' (unfused)'}", name, "ours", f,
                          build(name, f, dev)) for f in fused]
            out += [_Entry(f"{name} official", f"{name} official", "peer", True,
                           build_official(name, dev))
                    if p == OFFICIAL_PEER else _Entry(p, p, "peer", True, build_peer(p, size, True, dev))
                    for p in peers.get(name, ())]
            return out
        groups.append((name, entries))
    for cfg in yolo:
        stock = (yolo_peers or {}).get(cfg) or stock_yolo_peer(cfg)

        def entries(size, cfg=cfg, stock=stock):
            return [_Entry(Path(cfg).stem, Path(cfg).stem, "ours", True, build_yolo(cfg, True, dev)),
                    _Entry(Path(stock).stem, Path(stock).stem, "peer", True,
                           build_yolo(stock, True, dev))]
        groups.append((Path(cfg).stem, entries))
    for group, entries in groups:
        for size in sizes:
            torch.manual_seed(0)
            x = torch.randn(batch, 3, size, size, device=dev)
            rows = compare(entries(size), x, backends, dtypes, threads, warmup, repeats,
                           group, size, str(dev))
            results += rows
            if log:
                for r in rows:
                    log(_row_line(r))
                for line in format_ratios(rows).splitlines():
                    log(line)
    return results


def _row_line(r: BenchResult) -> str:
    err = "" if r.max_rel_err is None else f"  max err {r.max_rel_err:.1e}"
    return (f"{r.model:30s} {r.input_size:4d}px {r.role:4s} fused={str(r.fused):5s} "
            f"{r.backend:11s} {r.dtype:8s} {r.params_m:6.2f}M {r.gmacs:7.2f} GMACs  "
            f"median {r.median_ms:8.1f} ms  min {r.min_ms:8.1f} ms{err}")


# --- reporting ------------------------------------------------------------------

def ratios(results: Sequence[BenchResult]) -> List[Tuple[BenchResult, BenchResult, float]]:
    """(ours, other, other_ms / ours_ms) for each peer row and each other path of ours.

    Within one group and size: our fp32 eager fused build is the base; > 1 means ours
    is faster.
    """
    out = []
    keyed: Dict[Tuple[str, int], List[BenchResult]] = {}
    for r in results:
        keyed.setdefault((r.group, r.input_size), []).append(r)
    for rows in keyed.values():
        base = [r for r in rows if r.role == "ours"]
        if not base:
            continue
        main = next((r for r in base if (r.backend, r.dtype) == ("eager", "float32") and r.fused),
                    base[0])
        for r in rows:
            if r is main:
                continue
            if r.role == "peer" and (r.backend, r.dtype) != (main.backend, main.dtype):
                same = next((b for b in base if (b.backend, b.dtype, b.fused) ==
                             (r.backend, r.dtype, True)), None)
                if same is not None:  # a peer's compile/bf16 path against ours on the same path
                    out.append((same, r, r.median_ms / same.median_ms))
                continue
            out.append((main, r, r.median_ms / main.median_ms))
            if r.role == "peer":  # the peer as it runs (eager fp32) against our faster fp32 paths
                out += [(b, r, r.median_ms / b.median_ms) for b in base
                        if b is not main and b.fused and b.dtype == "float32"]
    return out


def format_ratios(results: Sequence[BenchResult]) -> str:
    """One line per ratio: ``<size>px <ours>: <other> takes <r>x its time`` (> 1: ours faster)."""
    lines = []
    for ours, other, ratio in ratios(results):
        if other.role == "peer":
            verdict = f"ours {ratio:.2f}x faster" if ratio >= 1 else f"ours {1 / ratio:.2f}x slower"
        else:  # another path of our model: how it compares with our fp32 eager base
            verdict = (f"{_label(other)} {1 / ratio:.2f}x faster" if ratio < 1
                       else f"{_label(other)} {ratio:.2f}x slower")
        lines.append(f"{ours.input_size}px  {_label(other)} / {_label(ours)} = {ratio:.2f} "
                     f"({verdict})")
    return "\n".join(lines)


def _label(r: BenchResult) -> str:
    extra = [] if r.fused else ["unfused"]
    if r.backend != "eager":
        extra.append(r.backend)
    if r.dtype != "float32":
        extra.append(r.dtype)
    return r.model + (f" [{', '.join(extra)}]" if extra else "")


def format_table(results: Sequence[BenchResult]) -> str:
    """Markdown table: one row per timed path, with its ratio to our base path."""
    ratio_of: Dict[int, float] = {}
    for _, other, ratio in ratios(results):  # a peer's first ratio is to our base path (or to
        ratio_of.setdefault(id(other), ratio)  # ours on its own path); later ones to our others
    head = ("| model | role | input | batch | fused | backend | dtype | params (M) | GMACs | "
            "median (ms) | min (ms) | img/s | max rel. err vs fp32 eager | time / ours | "
            "paper: params / FLOPs / top-1 |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    rows = []
    for r in results:
        err = "-" if r.max_rel_err is None else f"{r.max_rel_err:.1e}"
        ratio = ratio_of.get(id(r))
        rows.append(f"| {r.model} | {r.role} | {r.input_size} | {r.batch} | "
                    f"{'yes' if r.fused else 'no'} | {r.backend} | {r.dtype} | {r.params_m:.2f} | "
                    f"{r.gmacs:.2f} | {r.median_ms:.1f} | {r.min_ms:.1f} | {r.throughput:.1f} | "
                    f"{err} | {'-' if ratio is None else f'{ratio:.2f}'} | "
                    f"{published_summary(r.model) if r.role == 'ours' else ''} |")
    return head + "\n".join(rows) + "\n"


def to_json(results: Sequence[BenchResult]) -> str:
    return json.dumps([asdict(r) for r in results], indent=2)


def plot(results: Sequence[BenchResult], path: Path) -> Path:
    """Latency against GMACs, ours and peers, one panel per input size (matplotlib, Agg).

    Only fp32 eager fused rows are drawn (one point per model and size: a peer timed in
    several comparisons is drawn from the first). Points of different comparisons were
    timed at different moments; on a shared machine read ratios from the table.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter
    rows = [r for r in results if r.fused and (r.backend, r.dtype) == ("eager", "float32")]
    sizes = sorted({r.input_size for r in rows})
    if not sizes:
        raise ValueError("no fp32 eager fused rows to plot")
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.5), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        drawn: Dict[str, Tuple[float, float]] = {}  # model -> (GMACs, ms) drawn
        for r in rows:
            if r.input_size != size or r.model in drawn:
                continue
            drawn[r.model] = (r.gmacs, r.median_ms)
            ours = r.role == "ours"
            ax.scatter(r.gmacs, r.median_ms, marker="o" if ours else "s",
                       color="tab:red" if ours else "tab:gray", zorder=3,
                       label=("lsdense" if ours else "peer"))
            ax.annotate(r.model, (r.gmacs, r.median_ms), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        ax.legend(uniq.values(), uniq.keys(), loc="upper left")
        ax.set_xscale("log")
        ax.set_yscale("log")
        gmacs, ms = zip(*drawn.values())
        for axis, values, set_lim in ((ax.xaxis, gmacs, ax.set_xlim), (ax.yaxis, ms, ax.set_ylim)):
            # labelled ticks at 1-2-5 steps, plain numbers; limits at least a factor 2.56 wide
            # (the widest 1-2-5 gap is 2.5) so a tick always falls inside, labels not clipped
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(NullFormatter())
            set_lim(min(values) / 1.6, max(values) * 1.6)
        ax.set_xlabel("GMACs (per image)")
        ax.set_ylabel("median latency (ms)")
        threads = rows[0].threads
        ax.set_title(f"{size}x{size}, batch {rows[0].batch}, {rows[0].device}, {threads} thread(s)")
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def benchmark_ska(shape: Sequence[int] = (1, 64, 80, 80), threads: int = 2, repeats: int = 50,
                  device: str = "cpu") -> Dict[str, float]:
    """Median ms of the SKA reference (unfold) and fast path, forward and forward+backward.

    The default shape is LSNet-T's stage-1 map at 640x640 input.
    """
    from lsdense.models.ska import ska_fast, ska_reference
    torch.set_num_threads(threads)
    dev = torch.device(device)
    b, c, h, w = shape
    x = torch.randn(shape, device=dev, requires_grad=True)
    wt = torch.randn(b, c // 8, 9, h, w, device=dev, requires_grad=True)
    g = torch.randn(shape, device=dev)
    fns = {}
    for name, fn in (("reference", ska_reference), ("fast", ska_fast)):
        def fwd(fn=fn):
            with torch.no_grad():
                return fn(x, wt)
        fns[f"{name}_fwd_ms"] = fwd
        fns[f"{name}_fwd_bwd_ms"] = lambda fn=fn: torch.autograd.grad(fn(x, wt), (x, wt), g)
    times = time_interleaved(fns, repeats, 5, threads)
    return {k: statistics.median(v) for k, v in times.items()}


def benchmark_lisa(name: str = "lisanet_s", size: int = 640, threads: int = 2, repeats: int = 10,
                   warmup: int = 2, device: str = "cpu", floor: bool = True,
                   peer: Optional[str] = None) -> Dict[str, float]:
    """Median ms of one fused dense LiSANet forward in each form, interleaved call by call.

    Same model, same input: ``reference_ms`` (whole-tensor paired FFTs), ``fast_ms`` (what
    ``fuse()`` selects: cache-sized chunks, row-strip MLPs) and ``export_ms`` (real DFT
    matmuls, rank <= 4: what an exported graph computes), so the ratios isolate the forms.
    Also returns ``max_rel_err`` (fast and export against reference outputs) and
    (``floor``) the time of the fast form with the spectral part of every LiSA skipped
    (``y = v``; qkv/proj convolutions kept): a diagnostic bound on what any LiSA
    implementation could reach, not a model. ``peer`` (a timm name) is timed in the same
    loop (``peer_ms``).
    """
    from lsdense.models import lisa as LA
    torch.set_num_threads(threads)
    dev = torch.device(device)
    model = build(name, True, dev)
    x = torch.randn(1, 3, size, size, device=dev)
    fast = LA.lisa_fast

    def run(form: str, skip: bool = False):
        def call():
            if skip:  # the fast form's spectral part: y = v
                LA.lisa_fast = lambda q, k, v, p1, p2, eps=1e-6: v
            try:
                with using_form(model, form), torch.inference_mode():
                    return model(x)
            finally:
                LA.lisa_fast = fast
        return call
    paths = {f"{form}_ms": run(form) for form in ("reference", "fast", "export")}
    ref = paths["reference_ms"]()
    err = max(max_rel_error(paths["fast_ms"](), ref), max_rel_error(paths["export_ms"](), ref))
    if floor:
        paths["without_spectral_ms"] = run("fast", skip=True)
    if peer:
        peer_model = build_peer(peer, size, True, dev)

        def run_peer():
            with torch.inference_mode():
                return peer_model(x)
        paths["peer_ms"] = run_peer
    times = time_interleaved(paths, repeats, warmup, threads)
    out = {k: statistics.median(v) for k, v in times.items()}
    out["max_rel_err"] = err
    return out


def published_summary(name: str) -> str:
    """``params M / FLOPs G @size / top-1`` as the variant's paper gives them (registry)."""
    try:
        pub = get_variant(name).published
    except ValueError:  # not an lsdense variant (a YOLO model, a peer)
        return ""
    if pub is None:
        return ""
    top1 = f"{pub.top1.value}" if pub.top1 else "-"
    if pub.top1_distilled:
        top1 += f" ({pub.top1_distilled.value} distilled)"
    return f"{pub.params_m.value} M / {pub.gmacs.value} G @{pub.flops_input} / {top1}"


def _join_sources(sources: Iterable[str]) -> str:
    """Distinct sources joined by "; ", a repeated citation ("LiSA (Kwon et al.) ...") once."""
    out, prev = [], None
    for src in dict.fromkeys(sources):
        cite, sep, rest = src.partition(") ")
        out.append(rest if sep and cite == prev else src)
        prev = cite if sep else None
    return "; ".join(out)


def _value(fig) -> str:
    return f"{fig.value:.2f}" if fig.source.startswith("official log") else f"{fig.value}"


def published_table(names: Optional[Sequence[str]] = None) -> str:
    """Markdown tables of the published figures with their sources, read from the variant
    registry (``Variant.published``): ImageNet models, then dense-prediction results.
    docs/benchmarks.md holds its output (a test keeps them equal)."""
    names = list(names or list_backbones())
    models = ["| model | params (M) | exact count | FLOPs (G) | at | top-1 (%) | source |",
              "|---|---|---|---|---|---|---|"]
    dense = ["| model | config | metric | value | paper | source |", "|---|---|---|---|---|---|"]
    for name in names:
        pub = get_variant(name).published
        if pub is None:
            continue
        exact = f"{pub.params:,}" if pub.params else "-"
        if pub.backbone_params:
            exact += f" ({pub.backbone_params:,} backbone)"
        if not pub.params_include_head:
            exact += " (no classifier)"
        top1 = f"{pub.top1.value}" if pub.top1 else "-"
        if pub.top1_distilled:
            top1 += f" ({pub.top1_distilled.value} distilled)"
        sources = _join_sources([f.source for f in (pub.params_m, pub.gmacs, pub.top1,
                                                     pub.top1_distilled) if f is not None]
                                + ([f"count: {pub.params_source}"] if pub.params_source else []))
        models.append(f"| {name} | {pub.params_m.value} | {exact} | {pub.gmacs.value} | "
                      f"{pub.flops_input} | {top1} | {sources} |")
        for cfg, metrics in pub.dense.items():
            for metric, fig in metrics.items():
                paper = "" if fig.paper is None else \
                    (f"**{fig.paper}**" if fig.paper_differs() else f"{fig.paper}")
                dense.append(f"| {name} | {cfg} | {metric} | {_value(fig)} | {paper} | {fig.source} |")
    return "\n".join(models) + "\n\n" + "\n".join(dense) + "\n"


def benchmark_backbone_train_step(name: str = "lsnet_t", batch: int = 8,
                                  size: Tuple[int, int] = (256, 320), threads: int = 2,
                                  repeats: int = 5, warmup: int = 1) -> Dict[str, float]:
    """Median ms of one backbone training step, default SKA vs the unfold SKA (no framework).

    Forward of the dense backbone in train mode, a loss on every level (sum of squares,
    so every output gets a gradient), backward and an AdamW step; the two builds have the
    same weights and see the same input, interleaved call by call. The backbone part of
    :func:`benchmark_train_step`, for machines without MMDetection.
    """
    torch.set_num_threads(threads)
    x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0))
    steps = {}
    for impl in ("auto", "reference"):
        torch.manual_seed(0)
        model = create_backbone(name, ska_impl=impl).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step(model=model, opt=opt):
            opt.zero_grad(set_to_none=True)
            loss = sum(f.float().pow(2).mean() for f in model(x))
            loss.backward()
            opt.step()
            return loss.detach()
        steps[f"{'lsdense' if impl == 'auto' else 'unfold_ska'}_ms"] = step
    first = {k: float(fn()) for k, fn in steps.items()}
    times = time_interleaved(steps, repeats, warmup, threads)
    out = {k: statistics.median(v) for k, v in times.items()}
    out["first_loss_lsdense"], out["first_loss_unfold_ska"] = first["lsdense_ms"], first["unfold_ska_ms"]
    return out


def benchmark_train_step(config: str, batch: int = 8, size: Tuple[int, int] = (256, 320),
                         threads: int = 2, repeats: int = 5, warmup: int = 1,
                         boxes_per_image: int = 3) -> Dict[str, float]:
    """Median ms of one MMDetection training iteration, lsdense SKA vs the unfold SKA.

    Builds the detector of ``config`` twice (same seed: same weights), once with the
    backbone's default SKA (``ska_impl='auto'``: the fast path with its own backward)
    and once with ``ska_impl='reference'`` (the unfold SKA the official code runs on
    CPU), each with its own optimiser from the config's ``optim_wrapper``, and times
    ``model.train_step`` (data preprocessor, loss, backward, optimiser step) on the same
    synthetic batch, interleaved call by call.

    Args:
        config: an mmdet config whose backbone takes ``ska_impl`` (LSNet).
        batch, size: images per iteration and their ``(H, W)`` (quickstart: 8, 256 x 320).

    Raises:
        ImportError: without mmdet / mmengine.
    """
    import copy as _copy
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS
    from mmengine.structures import InstanceData
    register_all_modules()
    torch.set_num_threads(threads)
    cfg = Config.fromfile(config)
    if "custom_imports" in cfg:
        import importlib
        for mod in cfg.custom_imports.get("imports", []):
            importlib.import_module(mod)
    h, w = size
    g = torch.Generator().manual_seed(0)
    images, samples = [], []
    for _ in range(batch):
        images.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        xy = torch.rand(boxes_per_image, 2, generator=g) * torch.tensor([w * 0.6, h * 0.6])
        wh = 16 + torch.rand(boxes_per_image, 2, generator=g) * torch.tensor([w * 0.3, h * 0.3])
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], 1),
            labels=torch.randint(0, 3, (boxes_per_image,), generator=g))
        samples.append(sample)
    data = dict(inputs=images, data_samples=samples)
    steps, models = {}, {}
    for impl in ("auto", "reference"):
        model_cfg = _copy.deepcopy(cfg.model)
        model_cfg.backbone["ska_impl"] = impl
        model_cfg.backbone["init_cfg"] = None
        torch.manual_seed(0)
        model = MODELS.build(model_cfg)
        model.init_weights()
        model.train()
        optim = build_optim_wrapper(model, _copy.deepcopy(cfg.optim_wrapper))
        models[impl] = model
        steps[f"{'lsdense' if impl == 'auto' else 'unfold_ska'}_ms"] = \
            (lambda m=model, o=optim: m.train_step(_copy.copy(data), o))
    losses = {k: float(sum(v for n, v in fn().items() if "loss" in n)) for k, fn in steps.items()}
    times = time_interleaved(steps, repeats, warmup, threads)
    out = {k: statistics.median(v) for k, v in times.items()}
    out["first_loss_lsdense"], out["first_loss_unfold_ska"] = losses["lsdense_ms"], losses["unfold_ska_ms"]
    return out


def resolve_models(names: Sequence[str]) -> List[str]:
    """Expand ``all`` / family names (``lsnet``) into variant names, validating each."""
    out: List[str] = []
    for n in names:
        if n == "all":
            out += list_backbones()
        elif list_backbones(n):
            out += list_backbones(n)
        else:
            try:
                out.append(get_variant(n).name)
            except ValueError as err:
                families = sorted({get_variant(v).family for v in list_backbones()})
                raise ValueError(f"{err} Or a family ({', '.join(families)}), 'all'.") from None
    return out



def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["all"],
                   help="variants, families, 'all', or 'none' (only --yolo)")
    p.add_argument("--peers", nargs="*", default=None,
                   help="timm models timed beside every model (features_only); default: each "
                        "model's own peers; give no names for none; 'official' = LSNet's official "
                        "inference graph (folded, unfold SKA)")
    p.add_argument("--yolo", nargs="*", default=[], help="our Ultralytics YAMLs (stock peer inferred)")
    p.add_argument("--yolo-peer", default=None, help="stock YAML for every --yolo (default: inferred)")
    p.add_argument("--sizes", nargs="+", type=int, default=[224, 640],
                   help="square input sizes in pixels (default: 224 640)")
    p.add_argument("--batch", type=int, default=1, help="images per call (default: 1)")
    p.add_argument("--threads", type=int, default=2,
                   help="torch (and onnxruntime) threads (default: 2)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--fused", choices=["yes", "no", "both"], default="yes",
                   help="fused = Conv-BN folded + fast ops; unfused = reference ops (ours)")
    p.add_argument("--backend", nargs="+", choices=BACKENDS, default=["eager"])
    p.add_argument("--dtype", nargs="+", choices=list(DTYPES), default=["float32"])
    p.add_argument("--warmup", type=int, default=5,
                   help="untimed calls of every path first (default: 5)")
    p.add_argument("--repeats", type=int, default=20,
                   help="timed calls of every path, interleaved; medians reported (default: 20)")
    p.add_argument("--ska", action="store_true",
                   help="also time the SKA op alone (unfold reference vs fast path)")
    p.add_argument("--lisa", nargs="*", default=None, metavar="VARIANT",
                   help="also time the LiSA FFT path alone: broadcast form, pattern loop and "
                        "paired form, in "
                        "these variants (default lisanet_s) at the largest --sizes")
    p.add_argument("--train-step", metavar="CONFIG", nargs="?", const="configs/quickstart/retinanet_lsnet_t_toycoco.py",
                   help="also time one mmdet training iteration of CONFIG (default: the RetinaNet-"
                        "LSNet-T quickstart, batch 8 at 256x320), lsdense SKA vs unfold SKA")
    p.add_argument("--json", type=Path, help="write results as JSON")
    p.add_argument("--markdown", type=Path, help="write the table as Markdown")
    p.add_argument("--plot", type=Path, help="write latency vs GMACs (PNG, one panel per size)")
    args = p.parse_args(argv)
    fused = {"yes": (True,), "no": (False,), "both": (False, True)}[args.fused]
    for flag, values, low in (("--sizes", args.sizes, 1), ("--batch", [args.batch], 1),
                              ("--threads", [args.threads], 1), ("--repeats", [args.repeats], 1),
                              ("--warmup", [args.warmup], 0)):
        if min(values) < low:
            p.error(f"{flag} must be at least {low} (got {min(values)})")
    try:
        models = [] if args.models == ["none"] else resolve_models(args.models)
    except ValueError as err:
        p.error(f"{err} Or 'none' (with --yolo).")
    if not models and not args.yolo and not (args.ska or args.lisa is not None or args.train_step):
        p.error("nothing to time: name lsdense models with --models (e.g. lsnet_t, lsnet, all), "
                "or YOLO YAMLs with --yolo")
    args.yolo = [yolo_yaml(cfg) for cfg in args.yolo]  # bundled names too (lsdense.cfg)
    for cfg in args.yolo:
        if not Path(cfg).is_file():
            p.error(f"--yolo {cfg}: file not found")
    runtimes = [b for b in args.backend if b in RUNTIMES]
    if runtimes and args.dtype != ["float32"]:
        p.error(f"--backend {' '.join(runtimes)} runs float32 only; time bfloat16 with "
                f"eager/compile in a separate run")
    if "ncnn" in args.backend and args.batch != 1:
        p.error("--backend ncnn runs batch 1 (an ncnn Mat is one image): use --batch 1")
    peers = None if args.peers is None else {m: tuple(args.peers) for m in models}
    yolo_peers = {cfg: args.yolo_peer for cfg in args.yolo} if args.yolo_peer else None
    try:
        results = benchmark(models, args.sizes, args.batch, args.threads, args.device, fused,
                              args.warmup, args.repeats, peers=peers, backends=args.backend,
                              dtypes=args.dtype, yolo=args.yolo, yolo_peers=yolo_peers)
    except ValueError as err:  # a peer it cannot time (checked before any work), or a model
        p.error(str(err))      # refusing the input size (e.g. too small), named by the model
    table = format_table(results)
    ratio_lines = format_ratios(results)
    if args.ska:
        ska = benchmark_ska(threads=args.threads, device=args.device)
        table += ("\nSKA on 1x64x80x80 (LSNet-T stage 1 at 640): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in ska.items())
                  + f"; speed-up fwd {ska['reference_fwd_ms'] / ska['fast_fwd_ms']:.1f}x, "
                  f"fwd+bwd {ska['reference_fwd_bwd_ms'] / ska['fast_fwd_bwd_ms']:.1f}x\n")
    for name in ([] if args.lisa is None else (args.lisa or ["lisanet_s"])):
        size = max(args.sizes)
        peer = (args.peers or DEFAULT_PEERS.get(name, (None,)))[0] if args.peers != [] else None
        res = benchmark_lisa(name, size, args.threads, args.repeats, args.warmup, args.device,
                               peer=peer)
        table += (f"\nLiSA forms in {name} at {size} (fused): reference {res['reference_ms']:.1f} ms, "
                  f"fast {res['fast_ms']:.1f} ms, export {res['export_ms']:.1f} ms; reference / "
                  f"fast {res['reference_ms'] / res['fast_ms']:.2f}x, export / fast "
                  f"{res['export_ms'] / res['fast_ms']:.2f}x "
                  f"(max rel. diff {res['max_rel_err']:.1e}); same network with the LiSA "
                  f"spectral part skipped: {res['without_spectral_ms']:.1f} ms"
                  + (f"; {peer} in the same loop: {res['peer_ms']:.1f} ms" if peer else "") + "\n")
    if args.train_step:
        res = benchmark_backbone_train_step(threads=args.threads, repeats=args.repeats,
                                              warmup=args.warmup)
        table += (f"\nLSNet-T backbone training step (batch 8, 256x320, AdamW): lsdense "
                  f"{res['lsdense_ms']:.0f} ms, unfold SKA {res['unfold_ska_ms']:.0f} ms, ratio "
                  f"{res['unfold_ska_ms'] / res['lsdense_ms']:.2f}x\n")
        try:
            res = benchmark_train_step(args.train_step, threads=args.threads,
                                         repeats=args.repeats, warmup=args.warmup)
        except ImportError as err:
            table += f"\nDetector training iteration not timed: {err} (install lsdense[mmdet])\n"
            res = None
    if args.train_step and res is not None:
        table += (f"\nTraining iteration ({Path(args.train_step).name}, batch 8, 256x320): "
                  f"lsdense {res['lsdense_ms']:.0f} ms, unfold SKA {res['unfold_ska_ms']:.0f} ms, "
                  f"ratio {res['unfold_ska_ms'] / res['lsdense_ms']:.2f}x (first losses "
                  f"{res['first_loss_lsdense']:.4f} / {res['first_loss_unfold_ska']:.4f})\n")
    print(table)
    print("Ratios (other time / our time; > 1: ours faster):")
    print(ratio_lines)
    if args.json:
        args.json.write_text(to_json(results))
    if args.markdown:
        args.markdown.write_text(table + "\n" + ratio_lines + "\n")
    if args.plot:
        print(f"plot: {plot(results, args.plot)}")


if __name__ == "__main__":
    main()
