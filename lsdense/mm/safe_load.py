"""Let ``torch.load(weights_only=True)`` read the checkpoints mmengine writes.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10 calls
``torch.load(path)`` for resume, ``load_from`` and ``tools/test.py``. Its
checkpoints pickle a few non-tensor objects: the message hub's
``HistoryBuffer`` (numpy arrays inside), numpy scalars and dtypes, and the
``Counter`` of ``MultiStepLR`` milestones. Instead of switching the safety off
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``), :func:`allow_mmengine_checkpoints`

* adds exactly those globals to torch's allow-list, and
* registers a ``copyreg`` reducer for ``HistoryBuffer``: mmengine's own
  ``__getstate__`` also pickles its statistics *functions*, which pickle as
  ``builtins.getattr(HistoryBuffer, 'mean')``, and ``getattr`` must stay off an
  allow-list. The reducer leaves them out; ``__setstate__`` restores the
  defaults (custom methods are class-level and re-registered by their code).

Any other object in a file is still refused. Checkpoints written without lsdense
imported still hold the ``getattr`` calls; load those only if you trust them.
"""
from __future__ import annotations

import collections
import copyreg
from typing import List

import numpy as np
import torch

__all__ = ["mmengine_safe_globals", "allow_mmengine_checkpoints"]


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


def mmengine_safe_globals() -> List[object]:
    """The globals mmengine 0.10 checkpoints need beyond tensors and builtins."""
    from mmengine.logging.history_buffer import HistoryBuffer

    return [HistoryBuffer, collections.Counter, collections.OrderedDict, *_numpy_globals()]


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
    known = set(map(id, torch.serialization.get_safe_globals()))
    add([g for g in mmengine_safe_globals() if id(g) not in known])
