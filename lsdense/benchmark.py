"""Parameters, FLOPs and latency of lsdense backbones (library behind ``tools/benchmark.py``).

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (convolutions,
matrix products, attention) plus explicit formulas for the ops it does not
see: SKA (9 multiply-adds per output element) and LiSA's FFTs and weighted sums
(``LiSA.extra_flops``). Figures are reported as multiply-accumulates (GMACs),
the unit the papers call "FLOPs".
"""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from .models import create_backbone, get_variant, list_backbones
from .models.lisanet import LiSA
from .models.ska import SKA

__all__ = ["BenchResult", "count_flops", "measure_latency", "benchmark", "format_table",
           "published_summary", "published_table"]

# Ops FlopCounterMode cannot see: module type -> real FLOPs of one call.
_EXTRA_FLOPS: Dict[type, Callable[[nn.Module, tuple, torch.Tensor], int]] = {
    SKA: lambda m, inputs, out: 2 * 9 * out.numel(),
    LiSA: lambda m, inputs, out: m.extra_flops(*inputs[0].shape[-2:]) * inputs[0].shape[0],
}


@dataclass
class BenchResult:
    """One row of the benchmark table."""

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


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Real FLOPs (2 per multiply-add) of one forward, counter plus explicit extras."""
    extra = [0]

    def hook(mod, inputs, out):
        extra[0] += int(_EXTRA_FLOPS[type(mod)](mod, inputs, out))

    handles = [m.register_forward_hook(hook) for m in model.modules() if type(m) in _EXTRA_FLOPS]
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
    finally:
        for h in handles:
            h.remove()
    return counter.get_total_flops() + extra[0]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_latency(fn: Callable[[], object], device: torch.device, warmup: int = 5,
                    repeats: int = 20) -> List[float]:
    """Wall-clock times in ms of ``fn()`` after ``warmup`` calls (device-synchronised)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def build(name: str, fused: bool, device: torch.device) -> nn.Module:
    """Dense backbone for timing: fused (Conv-BN folded, fast ops) or unfused (reference ops)."""
    kwargs = {}
    if get_variant(name).family == "lsnet" and not fused:
        kwargs["ska_impl"] = "reference"  # the unfold SKA, as the official code on CPU
    model = create_backbone(name, **kwargs).to(device).eval()
    return model.fuse() if fused else model


def benchmark(models: Iterable[str], sizes: Sequence[int], batch: int = 1, threads: int = 2,
              device: str = "cpu", fused: Sequence[bool] = (True,), warmup: int = 5,
              repeats: int = 20, log: Optional[Callable[[str], None]] = print) -> List[BenchResult]:
    """Benchmark each model x size x fused setting; returns one :class:`BenchResult` each."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    results = []
    for name in models:
        for size in sizes:
            # fused and unfused builds are timed interleaved, call by call, so that both see
            # the same machine conditions (a shared 2-core VM drifts by 2x between runs)
            built = {f: build(name, f, dev) for f in fused}
            x = torch.randn(batch, 3, size, size, device=dev)
            times: Dict[bool, List[float]] = {f: [] for f in fused}
            with torch.inference_mode():
                for f, model in built.items():
                    measure_latency(lambda: model(x), dev, warmup, 0)
                for _ in range(repeats):
                    for f, model in built.items():
                        times[f] += measure_latency(lambda: model(x), dev, 0, 1)
            for f, model in built.items():
                params = sum(p.numel() for p in model.parameters())
                flops = count_flops(model, x[:1])
                med = statistics.median(times[f])
                r = BenchResult(name, size, batch, f, params / 1e6, flops / 2e9, med,
                                min(times[f]), batch * 1e3 / med, str(dev), threads)
                results.append(r)
                if log:
                    log(f"{name:12s} {size:4d}px  fused={str(f):5s} params {r.params_m:6.2f}M  "
                        f"{r.gmacs:7.2f} GMACs  median {med:8.1f} ms  min {r.min_ms:8.1f} ms")
    return results


def benchmark_ska(shape: Sequence[int] = (1, 64, 80, 80), threads: int = 2, repeats: int = 50,
                  device: str = "cpu") -> Dict[str, float]:
    """Median ms of the SKA reference (unfold) and fast path, forward and forward+backward.

    The default shape is LSNet-T's stage-1 map at 640x640 input.
    """
    from .models.ska import ska_fast, ska_reference
    torch.set_num_threads(threads)
    dev = torch.device(device)
    b, c, h, w = shape
    x = torch.randn(shape, device=dev, requires_grad=True)
    wt = torch.randn(b, c // 8, 9, h, w, device=dev, requires_grad=True)
    g = torch.randn(shape, device=dev)
    out = {}
    for name, fn in (("reference", ska_reference), ("fast", ska_fast)):
        with torch.no_grad():
            out[f"{name}_fwd_ms"] = statistics.median(measure_latency(lambda: fn(x, wt), dev, 5, repeats))
        out[f"{name}_fwd_bwd_ms"] = statistics.median(
            measure_latency(lambda: torch.autograd.grad(fn(x, wt), (x, wt), g), dev, 5, repeats))
    return out


def published_summary(name: str) -> str:
    """``params M / FLOPs G @size / top-1`` as the variant's paper gives them (registry)."""
    pub = get_variant(name).published
    if pub is None:
        return ""
    top1 = f"{pub.top1.value}" if pub.top1 else "-"
    if pub.top1_distilled:
        top1 += f" ({pub.top1_distilled.value} distilled)"
    return f"{pub.params_m.value} M / {pub.gmacs.value} G @{pub.flops_input} / {top1}"


def format_table(results: Sequence[BenchResult]) -> str:
    """Markdown table of results, with the paper's figures (``Variant.published``) per model."""
    head = ("| model | input | batch | fused | params (M) | GMACs | median (ms) | min (ms) | img/s "
            "| paper: params / FLOPs / top-1 |\n|---|---|---|---|---|---|---|---|---|---|\n")
    rows = [f"| {r.model} | {r.input_size} | {r.batch} | {'yes' if r.fused else 'no'} | "
            f"{r.params_m:.2f} | {r.gmacs:.2f} | {r.median_ms:.1f} | {r.min_ms:.1f} | "
            f"{r.throughput:.1f} | {published_summary(r.model)} |" for r in results]
    return head + "\n".join(rows) + "\n"


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


def to_json(results: Sequence[BenchResult]) -> str:
    return json.dumps([asdict(r) for r in results], indent=2)


def resolve_models(names: Sequence[str]) -> List[str]:
    """Expand ``all`` / family names (``lsnet``) into variant names, validating each."""
    out: List[str] = []
    for n in names:
        if n == "all":
            out += list_backbones()
        elif list_backbones(n):
            out += list_backbones(n)
        else:
            out.append(get_variant(n).name)
    return out
