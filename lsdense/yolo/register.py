"""Make Ultralytics find, check and safely load the lsdense modules.

``register()`` (run by ``import lsdense.yolo``; idempotent):

1. puts every lsdense YAML module into ``ultralytics.nn.tasks`` globals, where
   ``parse_model`` looks module names up;
2. allow-lists the classes a trained lsdense ``.pt`` pickles with
   ``torch.serialization.add_safe_globals``, so ``ULTRALYTICS_SAFE_LOAD=1``
   (``weights_only`` loading) accepts them;
3. adds the ``multitask`` task (A-YOLOM) to Ultralytics' per-task defaults
   (``TASK2DATA``, ``TASK2METRIC``), which ``Model.train`` looks up;
4. wraps ``parse_model`` with :func:`check_model_yaml`, so that an unknown module
   or arch and wrong ``Index`` channel counts fail with a message that names
   the fix instead of a ``KeyError`` or a convolution shape error.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from typing import Dict, List, Tuple

import torch
import torch.nn as nn

from lsdense.models import create_backbone

from . import modules as M

__all__ = ["register", "check_model_yaml", "lsdense_modules", "backbone_channels"]


def lsdense_modules() -> Dict[str, type]:
    """Every module name a YAML may use after ``import lsdense.yolo``."""
    return {**M.BACKBONE_MODULES, "AGate": M.AGate, "AdaptiveConcat": M.AdaptiveConcat, **M.SEG_HEADS}


@functools.lru_cache(maxsize=None)
def _backbone_info(family_cls: str, arch: str) -> Tuple[Tuple[int, int], ...]:
    """(channels, stride) of every level of a YAML backbone row (built once, cached)."""
    cls = M.BACKBONE_MODULES[family_cls]
    name = M._resolve_variant(cls.family, arch)
    body = create_backbone(name)
    return tuple((f["num_chs"], f["reduction"]) for f in body.feature_info)


def backbone_channels(module: str, arch: str, out_indices=None) -> List[int]:
    """Channels a backbone row returns, in ``Index`` order."""
    info = _backbone_info(module, arch)
    idx = range(len(info)) if out_indices is None else [i % len(info) for i in out_indices]
    return [info[i][0] for i in sorted(idx)]


def check_model_yaml(d: dict) -> None:
    """Raise ValueError for unknown modules/archs and ``Index`` channels that do not match.

    Args:
        d: a model YAML dict (``backbone`` + ``head`` rows of ``[from, n, module, args]``).
    """
    import ultralytics.nn.tasks as tasks

    rows = list(d.get("backbone", [])) + list(d.get("head", []))
    known = vars(tasks)
    outs: Dict[int, List[int]] = {}
    for i, (f, _, m, args) in enumerate(rows):
        if not isinstance(m, str) or m.startswith(("nn.", "torchvision.ops.")):
            continue
        if m in ("AdaptiveConcat", *M.SEG_HEADS):  # MultiTaskModel stands these in before parsing
            raise ValueError(f"Model YAML row {i}: {m} needs the multi-task model, which fills in its "
                             f"input channels: build with lsdense.yolo.AYOLOM('<yaml>'), not YOLO().")
        if m not in known:
            raise ValueError(
                f"Model YAML row {i} names unknown module {m!r}. lsdense modules: "
                f"{', '.join(sorted(lsdense_modules()))} (available after `import lsdense.yolo`); "
                f"every other name must be an Ultralytics module from ultralytics.nn.tasks.")
        if m in M.BACKBONE_MODULES:
            if not args:
                raise ValueError(f"Model YAML row {i}: {m} needs an arch argument, e.g. [{m}, [s]].")
            kw = dict(zip(("arch", "pretrained", "out_indices"),
                          [a.strip("'\"") if isinstance(a, str) else a for a in args]))
            outs[i] = backbone_channels(m, kw["arch"], kw.get("out_indices"))
        elif m == "Index" and isinstance(f, int):
            src = f if f >= 0 else i + f
            if src in outs:
                c2, index = args[0], (args[1] if len(args) > 1 else 0)
                chans = outs[src]
                if not -len(chans) <= index < len(chans):
                    raise ValueError(
                        f"Model YAML row {i}: Index {index} is out of range; the backbone at row "
                        f"{src} returns {len(chans)} maps with channels {chans}.")
                if c2 != chans[index]:
                    raise ValueError(
                        f"Model YAML row {i}: Index declares {c2} channels for output {index} of the "
                        f"backbone at row {src}, which has {chans[index]} channels. Write "
                        f"[{src}, 1, Index, [{chans[index]}, {index}]] (backbone channels: {chans}).")


def _lsdense_classes() -> List[type]:
    """nn.Module subclasses an lsdense Ultralytics checkpoint may pickle (for weights_only)."""
    import lsdense
    import timm.layers

    for info in pkgutil.walk_packages(lsdense.__path__, "lsdense."):
        if info.name.startswith(("lsdense.models.", "lsdense.yolo.")):
            try:
                importlib.import_module(info.name)
            except ImportError:  # another adapter whose framework is not installed
                continue
    found, todo = [], [nn.Module]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("lsdense."):
                found.append(sub)
    found += [c for c in vars(timm.layers).values()
              if inspect.isclass(c) and issubclass(c, nn.Module)]
    return found


def _quote_backbone_strings(d: dict) -> None:
    """Quote the string arguments of backbone rows (arch, checkpoint path).

    ``parse_model`` replaces a string argument that names one of its local
    variables (``'t'``, ``'n'``) by that variable and ``literal_eval``s the rest,
    which fails on a path; a quoted string survives both as itself.
    """
    for sec in ("backbone", "head"):
        for row in d.get(sec, []):
            if row[2] in M.BACKBONE_MODULES:
                row[3] = [repr(a) if isinstance(a, str) and a[:1] not in "'\"" else a for a in row[3]]


def _checked(parse_model):
    @functools.wraps(parse_model)
    def parse_model_checked(d, ch, verbose=True):
        check_model_yaml(d)
        _quote_backbone_strings(d)
        return parse_model(d, ch, verbose)

    parse_model_checked.__lsdense_wrapped__ = parse_model
    return parse_model_checked


def register() -> None:
    """Register the lsdense modules with Ultralytics (safe to call repeatedly)."""
    import ultralytics.cfg as ucfg
    import ultralytics.nn.tasks as tasks

    ucfg.TASK2DATA.setdefault("multitask", "bdd100k.yaml")
    ucfg.TASK2METRIC.setdefault("multitask", "metrics/mAP50-95(B)")
    for name, cls in lsdense_modules().items():
        if getattr(tasks, name, cls) is not cls and getattr(tasks, name).__module__ != cls.__module__:
            raise RuntimeError(f"ultralytics.nn.tasks already defines {name!r}; lsdense cannot "
                               f"register a module of the same name.")
        setattr(tasks, name, cls)
    if not hasattr(tasks.parse_model, "__lsdense_wrapped__"):
        tasks.parse_model = _checked(tasks.parse_model)
    torch.serialization.add_safe_globals(_lsdense_classes())
