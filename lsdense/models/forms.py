"""One switch between the forms of lsdense's custom operators.

Each custom operator module (SKA's ``SKA``, LiSA's ``LiSA``, LOLViT's fused blocks) has

* a **reference** form: its class's ``forward``, the operator's math in plain PyTorch.
  Every model is built in it; it trains (autograd), scripts (TorchScript) and compiles;
* an **export** form: the same values (fp32 round-off) in plain real-valued ops on tensors
  of rank <= 4, which every converter and runtime takes (ONNX, TorchScript traces, OpenVINO,
  ncnn/pnnx, CoreML, TFLite);
* optionally a **fast** form: eager CPU inference (oneDNN fused ops, cache-sized chunks). It
  refuses to be captured by a tracer or an exporter (one clear error naming the fix).

A form is a subclass of the reference class that overrides methods only (no state of
its own), so switching is a change of ``__class__`` on the module: parameters, buffers,
hooks and checkpoints stay as they are. A module without a form of that name keeps its
reference form. :func:`set_form` is the one call that switches a model:

* ``model.fuse()`` (``DenseBackboneMixin.fuse``) folds Conv-BN pairs and selects ``'fast'``;
* :func:`prepare_export` (``fuse()`` + ``'export'``) is what every exporter needs;
  ``import lsdense.yolo`` makes Ultralytics' ``Exporter`` call it on the model it exports.
"""

import contextlib
from typing import Dict, Iterator, Tuple

import torch
import torch.fx
import torch.nn as nn

__all__ = ["FORMS", "register_forms", "set_form", "using_form", "forms_in", "prepare_export",
           "refuse_capture"]

FORMS = ("reference", "export", "fast")


def register_forms(reference: type, **forms: type) -> None:
    """Declare the forms of an operator class: ``register_forms(Ref, export=Exp, fast=Fast)``.

    Each form must subclass ``reference`` and add no state (it overrides methods only).

    Raises:
        ValueError: an unknown form name or a form that does not subclass ``reference``.
    """
    table: Dict[str, type] = {"reference": reference}
    for name, cls in forms.items():
        if name not in FORMS:
            raise ValueError(f"register_forms: unknown form {name!r}; forms are {FORMS}.")
        if not issubclass(cls, reference):
            raise ValueError(f"register_forms: {cls.__name__} must subclass {reference.__name__}.")
        table[name] = cls
    for cls in table.values():
        cls.lsdense_forms = table
        cls.lsdense_form = next(n for n, c in table.items() if c is cls)


def _operator_modules(model: nn.Module) -> Iterator[nn.Module]:
    for m in model.modules():
        if "lsdense_forms" in type(m).__dict__:
            yield m


def set_form(model: nn.Module, form: str) -> nn.Module:
    """Switch every custom operator module in ``model`` to ``form`` (in place; returns ``model``).

    Args:
        model: any module (an lsdense backbone, an Ultralytics or mm model holding one).
        form: ``'reference'``, ``'export'`` or ``'fast'``; an operator without that form
            takes its reference form.

    Raises:
        ValueError: an unknown form.
    """
    if form not in FORMS:
        raise ValueError(f"set_form: unknown form {form!r}; use one of {', '.join(FORMS)}.")
    for m in _operator_modules(model):
        table = type(m).lsdense_forms
        m.__class__ = table.get(form, table["reference"])
    return model


@contextlib.contextmanager
def using_form(model: nn.Module, form: str) -> Iterator[nn.Module]:
    """:func:`set_form` for the duration of a ``with`` block; each module gets its own form
    back afterwards (e.g. FLOP counting in the reference form of a fused model)."""
    before = [(m, type(m)) for m in _operator_modules(model)]
    try:
        yield set_form(model, form)
    finally:
        for m, cls in before:
            m.__class__ = cls


def forms_in(model: nn.Module) -> Tuple[str, ...]:
    """The forms the operator modules of ``model`` are in (sorted, each once)."""
    return tuple(sorted({type(m).lsdense_form for m in _operator_modules(model)}))


def prepare_export(model: nn.Module) -> nn.Module:
    """Make ``model`` ready for any exporter (in place; returns it in eval mode).

    Folds every lsdense backbone (``fuse()``: Conv-BN pairs, reparameterised branches) and
    selects the export form of every custom operator. Call it before ``torch.onnx.export``,
    ``torch.jit.trace``, ``openvino.convert_model``, ``pnnx.export`` or ``coremltools``;
    Ultralytics' exporter calls it itself once ``lsdense.yolo`` is imported.
    """
    from .layers import DenseBackboneMixin  # (layers imports this module)

    model.eval()
    for m in model.modules():
        if isinstance(m, DenseBackboneMixin) and not getattr(m, "fused", False):
            m.fuse()
    return set_form(model, "export")


def refuse_capture(module: nn.Module, x: torch.Tensor) -> None:
    """Raise when a form no export runtime takes is being captured by a tracer or exporter.

    Called by the fast forms (eager-only ops: oneDNN fused ops, loops sized by the input;
    also refused under ``torch.fx.symbolic_trace``) and by the reference forms of SKA and
    LiSA (rank-5/6 views, complex FFTs: ONNX and the TorchScript ONNX exporter take no
    complex tensors, ncnn and CoreML no rank > 4). The export form is the one to capture;
    refusing here replaces a converter's deep error, or a "successful" conversion that
    crashes in the runtime, with the fix.

    Raises:
        RuntimeError: under ``torch.jit.trace`` (TorchScript, OpenVINO, pnnx/ncnn and
            coremltools trace with it), ``torch.onnx.export`` or ``torch.export``.
    """
    form = getattr(type(module), "lsdense_form", "reference")
    if form == "fast" and isinstance(x, torch.fx.Proxy) or (
            torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_exporting()):
        what = ("runs in eager PyTorch only (set by fuse())" if form == "fast" else
                "computes with tensors that export runtimes do not take (rank > 4 or complex)")
        raise RuntimeError(
            f"{type(module).__name__} is in its {form!r} form, which {what}; a traced or "
            f"exported graph needs its export form. Call lsdense.models.prepare_export(model) "
            f"before tracing or exporting (Ultralytics' exporter does it once lsdense.yolo is "
            f"imported).")
