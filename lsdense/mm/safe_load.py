"""Let ``torch.load(weights_only=True)`` read the checkpoints mmengine writes.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10 calls
``torch.load(path)`` for resume, ``load_from`` and ``tools/test.py``. Its
checkpoints pickle a few kinds of non-tensor objects, and
:func:`allow_mmengine_checkpoints` allows each kind instead of switching the
safety off (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``):

* **numpy values** (message-hub scalars, arrays): numpy's reconstruction
  functions and dtype classes;
* **containers** of the parameter-scheduler states: ``Counter`` (``MultiStepLR``
  milestones), ``OrderedDict``;
* **mmengine's state class** ``HistoryBuffer``; a ``copyreg`` reducer also leaves
  its statistics-method table out of files written with lsdense imported
  (``__setstate__`` restores the defaults);
* **functions kept in a state as class attributes**: ``OneCycleLR`` stores its
  annealing function (a static method) and ``HistoryBuffer`` its statistics
  methods; pickle (protocol 2, ``torch.save``'s) writes such a function as
  ``builtins.getattr(Class, 'name')``. ``getattr`` itself must stay off the
  allow-list, so the name ``builtins.getattr`` is mapped (torch's documented
  ``(callable, name)`` form of ``add_safe_globals``) to
  :func:`mmengine_class_function`, which returns only a static method of an
  mmengine parameter-scheduler class or a ``HistoryBuffer`` statistics method and
  raises for anything else. The functions it returns cannot be called by the
  unpickler (they are not allow-listed), only stored.

Any other object in a file is still refused.
"""
from __future__ import annotations

import collections
import copyreg
import inspect
import pickle
from typing import Callable, List

import numpy as np
import torch

__all__ = ["mmengine_safe_globals", "allow_mmengine_checkpoints", "mmengine_class_function",
           "scheduler_classes_with_functions"]


def _numpy_globals() -> List[object]:
    """numpy's array/scalar reconstruction functions and the dtype classes they name."""
    try:  # numpy >= 2 moved ``core`` to ``_core``; pickles name the module they were made with
        from numpy._core import multiarray as _ma
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray as _ma
    out: List[object] = [_ma._reconstruct, _ma.scalar, np.ndarray, np.dtype]
    out += [type(np.dtype(t)) for t in ("float16", "float32", "float64", "int8", "int16", "int32",
                                        "int64", "uint8", "bool")]
    return out


def scheduler_classes_with_functions() -> List[type]:
    """mmengine's parameter-scheduler classes that define static methods (a scheduler may
    keep one in its state: ``OneCycleParamScheduler.anneal_func``)."""
    import mmengine.optim  # noqa: F401  (defines every scheduler)
    from mmengine.optim.scheduler import _ParamScheduler

    found, todo = [], [_ParamScheduler]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("mmengine.") and cls not in found and any(
                isinstance(v, staticmethod) for v in vars(cls).values()):
            found.append(cls)
    return sorted(found, key=lambda c: c.__qualname__)


# the statistics HistoryBuffer registers itself (its ``_set_default_statistics``)
_HISTORY_STATISTICS = ("min", "max", "current", "mean")


def mmengine_class_function(owner: object, name: object) -> Callable:
    """Weights-only stand-in for ``builtins.getattr(owner, name)`` in mmengine checkpoints.

    Returns ``owner.name`` only when it is a static method of an mmengine
    parameter-scheduler class or a statistics method of ``HistoryBuffer``.

    Raises:
        pickle.UnpicklingError: for any other lookup (the checkpoint is refused).
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    if isinstance(owner, type) and isinstance(name, str):
        attr = inspect.getattr_static(owner, name, None)
        if owner in scheduler_classes_with_functions() and isinstance(attr, staticmethod):
            return attr.__func__
        if owner is HistoryBuffer and name in _HISTORY_STATISTICS and inspect.isfunction(attr):
            return attr
    raise pickle.UnpicklingError(
        f"Weights-only load refused getattr({owner!r}, {name!r}): lsdense allows only the "
        f"attribute lookups mmengine checkpoints make (static methods of mmengine parameter "
        f"schedulers, HistoryBuffer statistics). Load the file with weights_only=False only "
        f"if you trust it.")


def mmengine_safe_globals() -> List[object]:
    """The globals mmengine 0.10 checkpoints need beyond tensors and builtins, by kind
    (see the module docstring); ``builtins.getattr`` maps to :func:`mmengine_class_function`."""
    from mmengine.logging.history_buffer import HistoryBuffer

    return [HistoryBuffer, collections.Counter, collections.OrderedDict, *_numpy_globals(),
            *scheduler_classes_with_functions(),
            (mmengine_class_function, "builtins.getattr")]


def _reduce_history_buffer(buf):
    """Pickle a ``HistoryBuffer`` as (class, no args, its data) without its method table."""
    state = {k: v for k, v in vars(buf).items() if k != "statistics_methods"}
    return type(buf), (), state


def allow_mmengine_checkpoints() -> None:
    """Allow-list :func:`mmengine_safe_globals` and register the ``HistoryBuffer`` reducer
    (idempotent)."""
    from mmengine.logging.history_buffer import HistoryBuffer

    copyreg.pickle(HistoryBuffer, _reduce_history_buffer)
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is None:  # torch < 2.4 loads everything anyway
        return
    known = set(torch.serialization.get_safe_globals())
    add([g for g in mmengine_safe_globals() if g not in known])
