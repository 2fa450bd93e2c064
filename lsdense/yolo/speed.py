"""Inference speed (FPS) of an Ultralytics model at a given batch size, as A-YOLOM reports it.

A-YOLOM quotes FPS at batch 1 and batch 32 (forward pass only, fused model,
no NMS); ``measure_fps`` times exactly that: ``iters`` forward passes after
``warmup`` untimed ones, images per second. The official code measures at
384x672 (the rectangular letterbox of a 1280x720 BDD100K frame at imgsz 640);
``AYOLOM_FPS_SIZES`` holds that and the square 640x640.
"""
from __future__ import annotations

import time
from typing import Sequence, Union

import torch

__all__ = ["measure_fps", "AYOLOM_FPS_SIZES"]

AYOLOM_FPS_SIZES = ((384, 672), (640, 640))  # (h, w): official (rect 1280x720), square


@torch.no_grad()
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
        device: where to run; CUDA is synchronised around the timing.
        half: use float16 (CUDA only).
    """
    import copy

    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    m = copy.deepcopy(model).to(device).eval()
    if hasattr(m, "fuse"):
        try:
            m = m.fuse(verbose=False)
        except TypeError:
            m = m.fuse()
    x = torch.rand(batch, 3, h, w, device=device)
    if half:
        m, x = m.half(), x.half()
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    for _ in range(warmup):
        m(x)
    sync()
    t = time.perf_counter()
    for _ in range(iters):
        m(x)
    sync()
    return batch * iters / (time.perf_counter() - t)
