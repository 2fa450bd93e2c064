"""Inference speed (FPS) of an Ultralytics model at a given batch size, as A-YOLOM reports it.

A-YOLOM quotes FPS at batch 1 and batch 32 (forward pass only, fused model,
no NMS); ``measure_fps`` times exactly that with lsdense's one latency loop
(:func:`lsdense.models.time_interleaved`, ``torch.utils.benchmark.Timer``:
CUDA synchronised, thread count pinned): ``warmup`` untimed forward passes, then
``iters`` timed ones; images per second at the median time. The official code
measures at 384x672 (the rectangular letterbox of a 1280x720 BDD100K frame at
imgsz 640); ``AYOLOM_FPS_SIZES`` holds that and the square 640x640.
"""
from __future__ import annotations

import copy
import inspect
import statistics
from typing import Sequence, Union

import torch

from lsdense.models import time_interleaved

__all__ = ["measure_fps", "AYOLOM_FPS_SIZES"]

AYOLOM_FPS_SIZES = ((384, 672), (640, 640))  # (h, w): official (rect 1280x720), square


def measure_fps(model: torch.nn.Module, imgsz: Union[int, Sequence[int]] = 640, batch: int = 1,
                warmup: int = 3, iters: int = 10, device: Union[str, torch.device] = "cpu",
                half: bool = False) -> float:
    """Images per second of ``model`` (an Ultralytics ``BaseModel`` or any module) on random input.

    Args:
        model: the network (``YOLO(...).model`` or ``AYOLOM(...).model``); it is deep-copied,
            fused when it has ``fuse()``, and put in eval mode.
        imgsz: square size or (h, w).
        batch: images per forward pass (A-YOLOM reports 1 and 32).
        warmup, iters: untimed and timed forward passes.
        device: where to run.
        half: use float16 (CUDA only).

    Returns:
        ``batch / median seconds per forward``.
    """
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    m = copy.deepcopy(model).to(device).eval()
    if hasattr(m, "fuse"):  # Ultralytics' fuse(verbose=) or a plain module's fuse()
        m = m.fuse(verbose=False) if "verbose" in inspect.signature(m.fuse).parameters else m.fuse()
    x = torch.rand(batch, 3, h, w, device=device)
    if half:
        m, x = m.half(), x.half()

    def forward():
        with torch.no_grad():
            return m(x)

    ms = time_interleaved({"forward": forward}, repeats=iters, warmup=warmup)["forward"]
    return batch * 1e3 / statistics.median(ms)
