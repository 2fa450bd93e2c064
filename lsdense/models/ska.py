"""Small-kernel aggregation (SKA), the dynamic 3x3 convolution of LSNet.

``out[b, c, h, w] = sum_{i,j} x[b, c, h+i-1, w+j-1] * wgt[b, c % G, 3i+j, h, w]``
with zero padding and ``G = C / 8`` weight groups. The groups are
*interleaved*: channel ``c`` uses weight group ``c mod G`` (official LSNet),
so a ``(B, C, H, W)`` map is viewed as ``(B, C/G, G, H, W)`` and the weights
broadcast over the second axis.

Three implementations:

* :func:`ska_reference`: ``F.unfold`` plus a weighted sum; short and
  obviously correct, autograd does the backward.
* :func:`ska_fast`: nine shifted multiply-adds over a padded view, with a
  hand-written backward (:class:`_SKAFunction`). No ``(B, 9C, H, W)`` unfold
  buffer, about a ninth of the memory traffic. Works on CPU and CUDA.
* :func:`ska_export`: the same nine shifted products on rank-4 tensors only (the weights
  as LKP's ``(B, 9G, H, W)`` map, each tap's ``G`` maps tiled over the ``C / G``
  interleaved channel groups). Every converter and runtime takes it (ncnn and CoreML take
  no tensor of rank 5 or 6); :class:`SKAExport`, the export form of :class:`SKA`
  (``lsdense.models.forms``).

:func:`ska` picks the fast path and falls back to the reference for inputs it
does not cover (tests check the two agree in values and gradients).
"""

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from .forms import refuse_capture, register_forms

__all__ = ["ska", "ska_reference", "ska_fast", "ska_export", "SKA", "SKAExport"]

_TAPS = [(i, j) for i in range(3) for j in range(3)]


def _check(x: torch.Tensor, w: torch.Tensor) -> int:
    if x.dim() != 4 or w.dim() != 5:
        raise ValueError(f"SKA expects x (B, C, H, W) and weights (B, G, 9, H, W); got "
                         f"{tuple(x.shape)} and {tuple(w.shape)}.")
    b, c, h, wd = x.shape
    if w.shape[0] != b or w.shape[2] != 9 or w.shape[3:] != (h, wd) or c % w.shape[1]:
        raise ValueError(f"SKA weights {tuple(w.shape)} do not fit x {tuple(x.shape)}: need "
                         f"(B, G, 9, H, W) with C divisible by G.")
    return c // w.shape[1]


def ska_reference(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Plain PyTorch SKA via ``F.unfold`` (the reference the fast path must match).

    Also the path of TorchScript and of ``torch.fx`` graphs (plain ops only).
    """
    if not torch.jit.is_scripting():
        _check(x, w)
    b, c, h, wd = x.shape
    g = w.shape[1]
    r = c // g
    cols = F.unfold(x, kernel_size=3, padding=1).view(b, r, g, 9, h, wd)
    return (cols * w.unsqueeze(1)).sum(dim=3).view(b, c, h, wd)


def _shifted(xp: torch.Tensor, i: int, j: int, h: int, wd: int) -> torch.Tensor:
    return xp[..., i:i + h, j:j + wd]


class _SKAFunction(torch.autograd.Function):
    """Shift-and-accumulate SKA with its own backward (no unfold buffer)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        r = _check(x, w)
        b, c, h, wd = x.shape
        g = w.shape[1]
        xp = F.pad(x, (1, 1, 1, 1)).view(b, r, g, h + 2, wd + 2)
        wv = w.unsqueeze(1)  # (B, 1, G, 9, H, W): broadcast over the interleaved groups
        out = _shifted(xp, 0, 0, h, wd) * wv[:, :, :, 0]
        for k in range(1, 9):
            i, j = _TAPS[k]
            out.addcmul_(_shifted(xp, i, j, h, wd), wv[:, :, :, k])
        ctx.save_for_backward(xp, w)
        return out.view(b, c, h, wd)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        xp, w = ctx.saved_tensors
        b, r, g, hp, wp = xp.shape
        h, wd = hp - 2, wp - 2
        go = grad_out.contiguous().view(b, r, g, h, wd)
        wv = w.unsqueeze(1)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            gxp = torch.zeros_like(xp)
            for k, (i, j) in enumerate(_TAPS):
                gxp[..., i:i + h, j:j + wd].addcmul_(go, wv[:, :, :, k])
            grad_x = gxp[..., 1:h + 1, 1:wd + 1].reshape(b, r * g, h, wd)
        if ctx.needs_input_grad[1]:
            # grad_w[:, g, k] = sum_r go[:, r, g] * shifted_k(x)[:, r, g]: accumulate over the
            # R interleaved channel groups in place (no (B, R, G, H, W) temporaries)
            grad_w = torch.empty_like(w)
            for k, (i, j) in enumerate(_TAPS):
                xs = _shifted(xp, i, j, h, wd)
                gk = grad_w[:, :, k]
                torch.mul(go[:, 0], xs[:, 0], out=gk)
                for q in range(1, r):
                    gk.addcmul_(go[:, q], xs[:, q])
        return grad_x, grad_w


def ska_fast(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Fast SKA: nine shifted multiply-adds, custom backward."""
    return _SKAFunction.apply(x, w)


def _fast_supported(x: torch.Tensor, w: torch.Tensor) -> bool:
    return (x.dtype == w.dtype and x.device == w.device and x.dtype in
            (torch.float16, torch.bfloat16, torch.float32, torch.float64)
            and not torch.jit.is_scripting() and not torch.jit.is_tracing())


@torch.fx.wrap  # one leaf call in torch.fx graphs (torchvision / timm feature extraction)
def ska(x: torch.Tensor, w: torch.Tensor, impl: str = "auto") -> torch.Tensor:
    """SKA with implementation choice: ``'auto'`` (fast, else reference), ``'fast'``, ``'reference'``.

    TorchScript compiles the reference (the fast path's autograd.Function is Python);
    a ``torch.fx`` graph calls this function as a leaf, so it runs the fast path.
    """
    if torch.jit.is_scripting():
        return ska_reference(x, w)
    else:
        return _ska_eager(x, w, impl)


def _ska_eager(x: torch.Tensor, w: torch.Tensor, impl: str) -> torch.Tensor:
    if impl == "reference" or (impl == "auto" and not _fast_supported(x, w)):
        return ska_reference(x, w)
    if impl not in ("auto", "fast"):
        raise ValueError(f"Unknown SKA impl {impl!r}; use 'auto', 'fast' or 'reference'.")
    return ska_fast(x, w)


def ska_export(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """SKA in plain ops on rank-4 tensors (the export form; equal to :func:`ska_reference`).

    Args:
        x: ``(B, C, H, W)``.
        w: ``(B, 9G, H, W)``: LKP's output before the ``(B, G, 9, H, W)`` view, group
            ``g``'s tap ``k`` (row-major 3x3) at channel ``9g + k``; ``C`` divisible by ``G``.

    Returns:
        ``(B, C, H, W)``.

    Tap ``k``'s ``(B, G, H, W)`` weights are one chunk of the map reordered tap-major;
    channel ``c`` uses group ``c mod G``, i.e. that chunk concatenated ``C / G`` times along
    channels (a ``Concat``, which every runtime has; no rank-5 broadcast).
    """
    b, c, h, wd = x.shape
    g = w.shape[1] // 9
    r = c // g
    # tap-major: (B, G, 9, HW) -> (B, 9, G, HW) -> nine (B, G, H, W) maps (ranks <= 4)
    taps = w.reshape(b, g, 9, h * wd).transpose(1, 2).reshape(b, 9 * g, h, wd).split(g, dim=1)
    xp = F.pad(x, (1, 1, 1, 1))
    terms = [xp[:, :, i:i + h, j:j + wd] * (torch.cat([taps[k]] * r, dim=1) if r > 1 else taps[k])
             for k, (i, j) in enumerate(_TAPS)]
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


class SKA(nn.Module):
    """SKA as a module (no parameters; ``impl`` selects :func:`ska`'s path).

    ``forward(x, w)``: ``x`` ``(B, C, H, W)``, ``w`` LKP's ``(B, 9G, H, W)`` map (group
    ``g``'s tap ``k`` at channel ``9g + k``), viewed as ``(B, G, 9, H, W)`` for :func:`ska`.
    Export form: :class:`SKAExport`.
    """

    def __init__(self, impl: str = "auto"):
        super().__init__()
        self.impl = impl

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():
            refuse_capture(self, x)  # (rank-5 weights: the export form is rank 4)
        b, _, h, wd = w.shape
        return ska(x, w.view(b, -1, 9, h, wd), self.impl)

    def uncounted_flops(self, inputs: tuple, out: torch.Tensor) -> int:
        """FLOPs ``FlopCounterMode`` does not see in one call: 9 multiply-adds (2 FLOPs each)
        per output element (:func:`lsdense.models.profiling.count_flops` adds them)."""
        return 2 * 9 * out.numel()

    def extra_repr(self) -> str:
        return f"impl={self.impl!r}"


class SKAExport(SKA):
    """Export form of :class:`SKA` (:func:`ska_export`: rank-4 plain ops)."""

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return ska_export(x, w)


register_forms(SKA, export=SKAExport)
