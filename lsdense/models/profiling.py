"""FLOPs and latency of a model: the two measurements the library itself reports.

``count_flops`` is what ``lsdense.yolo`` reports as GFLOPs and what the tests check against
the papers' counts; ``time_interleaved`` is the one latency loop behind
:func:`lsdense.yolo.speed.measure_fps` and ``tools/benchmark.py`` (the peer comparisons,
backends and plots live there, outside the package).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import torch
import torch.nn as nn
from torch.utils.benchmark import Timer
from torch.utils.flop_counter import FlopCounterMode

from .forms import using_form

__all__ = ["count_flops", "time_interleaved"]


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Real FLOPs (2 per multiply-add) of one forward of ``model`` on ``x``.

    ``torch.utils.flop_counter.FlopCounterMode`` counts convolutions, matrix products and
    attention; a module whose ops it cannot see (SKA's shifted products, LiSA's FFTs) adds
    them through its ``uncounted_flops(inputs, output)`` method. Counted in the reference
    forms (a fused model's fast forms recompute halo rows, which are not the model's FLOPs).
    Divide by 2e9 for the papers' GMACs ("FLOPs"), by 1e9 for Ultralytics' GFLOPs.
    """
    extra = [0]

    def hook(mod, inputs, out):
        extra[0] += int(mod.uncounted_flops(inputs, out))

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if callable(getattr(m, "uncounted_flops", None))]
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), using_form(model, "reference"), counter:
            model(x)
    finally:
        for h in handles:
            h.remove()
    return counter.get_total_flops() + extra[0]


def time_interleaved(fns: Dict[str, Callable[[], Any]], repeats: int = 20, warmup: int = 5,
                     threads: Optional[int] = None) -> Dict[str, List[float]]:
    """Milliseconds per call of each ``fn``, calls interleaved: a, b, c, a, b, c, ...

    Interleaving call by call lets every path see the same machine state, so ratios from
    one run are comparable. ``torch.utils.benchmark.Timer`` synchronises CUDA and pins the
    thread count (``threads``, default the current one). ``warmup`` untimed calls of each
    first.
    """
    from torch.utils.benchmark.utils.common import set_torch_threads
    threads = threads or torch.get_num_threads()
    timers = {k: Timer(stmt="fn()", globals={"fn": f}, num_threads=threads)
              for k, f in fns.items()}
    times: Dict[str, List[float]] = {k: [] for k in fns}
    # Timer._timeit(n): exactly n timed calls. The public timeit() adds two untimed calls
    # before every measurement, which would triple the cost of call-by-call interleaving.
    with set_torch_threads(threads):
        for t in timers.values():
            if warmup:
                t._timeit(warmup)
        for _ in range(repeats):
            for k, t in timers.items():
                times[k].append(t._timeit(1) * 1e3)
    return times
