"""Convert a checkpoint of the official A-YOLOM code into an lsdense ``.pt`` for stock Ultralytics.

The official code (JiayuanWang-JW/YOLOv8-multi-task, a fork of Ultralytics
8.0.105) saves pickled model objects whose classes live in the fork's modules
(``ultralytics.nn.tasks.MultiModel``, ``ultralytics.nn.modules.conv.Concat_dropout``,
its own ``ultralytics.nn.modules.head.Segment`` and ``Detect``,
``ultralytics.yolo.utils.IterableSimpleNamespace`` ...), which stock
Ultralytics cannot unpickle. :func:`load_fork_checkpoint` reads such a file
with a restricted unpickler: every ``ultralytics.*`` class becomes an inert
stand-in module (state restored, no code of the fork run), ``torch.nn`` layers
and tensors load as usual, a short allow-list covers containers and numpy
scalars, and anything else is refused with the name of the global.

Rows and state-dict keys map one to one (``official.md``): backbone and
detection neck 0-21, lane branch 22-33, drivable branch 34-45, Detect 46,
drivable head 47, lane head 48. The official ``Segment`` heads' unused ``DFL``
weights (16 each, ``arange(16)``, never in the forward pass) are dropped.
"""
from __future__ import annotations

import importlib
import io
import pickle
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Union

import torch
import torch.nn as nn

__all__ = ["load_fork_checkpoint", "convert_ayolom", "ForkStandIn"]

_FORK_TYPES = {23: "Concat_dropout", 46: "Detect", 47: "Segment", 48: "Segment"}
_TORCH_REBUILD = {"_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state"}
_ALLOWED = {("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"),
            ("builtins", "slice"), ("builtins", "complex"), ("copyreg", "_reconstructor"),
            ("builtins", "object"), ("torch", "Size"), ("torch", "device"),
            ("pathlib", "PosixPath"), ("pathlib", "WindowsPath"), ("pathlib", "Path"),
            ("numpy", "dtype"), ("numpy", "ndarray"), ("_codecs", "encode")}
_NUMPY_CORE = {"scalar", "_reconstruct"}


class ForkStandIn(nn.Module):
    """Inert stand-in for a class of the official fork: keeps the pickled state, runs nothing.

    ``fork_class`` is the fork's ``module.name``. Being an ``nn.Module``, a
    stand-in's ``state_dict()`` walks its restored sub-modules and parameters.
    """

    fork_class = ""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, *args, **kwargs):
        raise RuntimeError(f"{self.fork_class} is a stand-in for a class of the official A-YOLOM code; "
                           f"convert the checkpoint with tools/convert_ayolom.py and load it with AYOLOM().")


_STAND_INS: Dict[str, type] = {}


def _stand_in(module: str, name: str) -> type:
    key = f"{module}.{name}"
    if key not in _STAND_INS:
        _STAND_INS[key] = type(name, (ForkStandIn,), {"fork_class": key, "__module__": __name__})
    return _STAND_INS[key]


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a fork checkpoint needs (see the module docstring)."""

    source = "checkpoint"

    def find_class(self, module: str, name: str):
        import _compat_pickle

        # Python 2 names of protocol-2 files (torch.save's default), mapped as pickle itself does
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if module == "ultralytics" or module.startswith("ultralytics."):
            return _stand_in(module, name)
        if module.startswith("torch.nn.modules."):
            obj = getattr(importlib.import_module(module), name, None)
            if isinstance(obj, type) and issubclass(obj, nn.Module):
                return obj
        elif module == "torch._utils" and name in _TORCH_REBUILD:
            return getattr(torch._utils, name)
        elif module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        elif module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in _NUMPY_CORE:
            import numpy as np

            return getattr(np.core.multiarray if hasattr(np, "core") else np._core.multiarray, name)
        elif module == "numpy.dtypes" and name.endswith("DType"):
            return getattr(importlib.import_module(module), name)
        elif (module, name) in _ALLOWED:
            return getattr(importlib.import_module(module), name)
        raise pickle.UnpicklingError(
            f"{self.source} references {module}.{name}, which the A-YOLOM converter does not load "
            f"(only Ultralytics classes, torch.nn layers, tensors, containers and numpy scalars). "
            f"Is this a checkpoint saved by the official A-YOLOM code?")


def load_fork_checkpoint(path: Union[str, Path]) -> Dict[str, Any]:
    """Unpickle a checkpoint of the official A-YOLOM code with stand-ins for its classes.

    Returns:
        The checkpoint dict; its ``model`` / ``ema`` entries are :class:`ForkStandIn` trees.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a loadable checkpoint, or a global outside the allow-list.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"A-YOLOM checkpoint {path} not found.")

    class Unpickler(_RestrictedUnpickler):
        source = str(path)

    module = type("restricted_pickle", (), {"Unpickler": Unpickler, "load": staticmethod(
        lambda f, **kw: Unpickler(f, **kw).load()), "__name__": "restricted_pickle"})
    try:
        # weights_only=False only because torch's own weights-only unpickler cannot map the fork's
        # class names to stand-ins; the Unpickler above is the allow-list.
        return torch.load(path, map_location="cpu", pickle_module=module, weights_only=False)
    except pickle.UnpicklingError as err:
        raise ValueError(str(err)) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{path} is not a readable PyTorch checkpoint: {err}") from None


def _fork_model(ckpt: Any, path: str) -> ForkStandIn:
    root = None
    if isinstance(ckpt, dict):
        root = ckpt.get("ema") or ckpt.get("model")
    if not isinstance(getattr(root, "model", None), nn.Sequential):
        raise ValueError(f"{path}: expected an Ultralytics checkpoint dict whose 'ema' or 'model' entry "
                         f"holds the network (.model rows); got {type(root).__name__}.")
    rows = root.model
    kinds = {i: type(rows[i]).__name__ for i in _FORK_TYPES if i < len(rows)}
    if len(rows) != 49 or kinds != _FORK_TYPES:
        raise ValueError(f"{path}: {len(rows)} rows with {kinds} at rows {sorted(_FORK_TYPES)}; the "
                         f"published A-YOLOM models (yolov8-bdd-v4-one-dropout-individual-n/s) have 49 rows "
                         f"with {_FORK_TYPES}.")
    return root


def convert_ayolom(src: Union[str, Path], dst: Union[str, Path]) -> Dict[str, Any]:
    """Convert an official A-YOLOM checkpoint into a ``.pt`` that ``AYOLOM(dst)`` loads on stock Ultralytics.

    The scale (n or s) is read from the first convolution's width. Every tensor of
    the official model must land in the lsdense model (same shape) except the two
    unused ``Segment.dfl`` weights; BatchNorm eps/momentum are copied too.

    Returns:
        ``{'scale', 'tensors' (in the official model), 'loaded', 'dropped' (keys), 'dst'}``.

    Raises:
        ValueError: not an official A-YOLOM checkpoint, or tensors that do not map.
    """
    import ultralytics

    from .model import MultiTaskModel
    from .yamlgen import ayolom_yaml

    src, dst = Path(src), Path(dst)
    root = _fork_model(load_fork_checkpoint(src), str(src))
    state = root.state_dict()
    first = state.get("model.0.conv.weight")
    scale = {16: "n", 32: "s"}.get(None if first is None else first.shape[0])
    if scale is None:
        raise ValueError(f"{src}: first convolution has {None if first is None else first.shape[0]} "
                         f"output channels; A-YOLOM-n has 16 and A-YOLOM-s 32.")
    model = MultiTaskModel(ayolom_yaml("yolov8", scale), verbose=False)
    ours = model.state_dict()
    mapped, dropped = {}, []
    for key, value in state.items():
        _, row, rest = key.split(".", 2)
        if row in ("47", "48") and rest.startswith("dfl."):
            dropped.append(key)
            continue
        mapped[key] = value
    missing = sorted(set(ours) - set(mapped))
    unexpected = sorted(set(mapped) - set(ours))
    wrong = sorted(k for k in set(ours) & set(mapped) if ours[k].shape != mapped[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(f"{src}: tensors do not map onto A-YOLOM-{scale}: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}, shape mismatch {wrong[:5]}.")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in mapped.items()})
    fork_bn = {k: m for k, m in root.named_modules() if isinstance(m, nn.BatchNorm2d)}
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps, m.momentum = fork_bn[name].eps, fork_bn[name].momentum
    model.names = {0: "vehicle"}  # car, bus, truck and train merged (single_cls), as published
    model.args = {"task": "multitask", "imgsz": 640, "single_cls": True}
    model.eval()
    ckpt = {"date": datetime.now().isoformat(), "version": ultralytics.__version__,
            "epoch": -1, "best_fitness": None, "model": model, "ema": None, "updates": None,
            "optimizer": None, "train_args": dict(model.args),
            "converted_from": {"file": src.name, "format": "official A-YOLOM (Ultralytics 8.0.105 fork)"}}
    dst.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    dst.write_bytes(buf.getvalue())
    return {"scale": scale, "tensors": len(state), "loaded": len(mapped), "dropped": dropped, "dst": dst}
