"""``python tools/train.py configs/yolo/<file>.yaml [key=value ...]``: train through Ultralytics.

Library behind ``tools/train.py``: :func:`run` returns the metrics; reading the command
line and printing are the tool's.

Two kinds of YAML are accepted:

* a train-setting YAML (``model:`` + Ultralytics train arguments, e.g.
  ``configs/yolo/lolvit_s-coco.yaml``), the counterpart of an mm config;
* a model YAML (``backbone:`` + ``head:``); then ``data=...`` must be given.

``task: multitask`` (or a model YAML with ``SegHead`` rows) trains A-YOLOM.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from lsdense.cfg import yolo_yaml

__all__ = ["run", "main", "prepare", "train_prepared", "load_train_config", "build_model",
           "guess_task", "parse_overrides", "check_train_args"]


def parse_overrides(items: Sequence[str]) -> Dict[str, Any]:
    """``['epochs=1', 'imgsz=64']`` -> ``{'epochs': 1, 'imgsz': 64}``, values typed by Ultralytics'
    own CLI parser (``ultralytics.cfg.parse_key_value_pair``); a leading ``--`` is dropped.

    Raises:
        ValueError: an item is not ``key=value`` or has an empty value.
    """
    from ultralytics.cfg import parse_key_value_pair

    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not k.strip("- ") or not v.strip():  # Ultralytics asserts here: a message instead
            raise ValueError(f"Expected key=value, got {it!r} (e.g. epochs=1 imgsz=128).")
        k, v = parse_key_value_pair(f"{k.lstrip('-')}={v}")
        out[k] = v
    return out


def guess_task(model: str) -> Optional[str]:
    """The task of a model YAML or checkpoint, as Ultralytics reads it.

    ``'multitask'`` for an A-YOLOM YAML (``SegHead`` / ``SegHeadLinear`` rows); otherwise
    Ultralytics' own ``guess_model_task`` on the YAML (the head's last module: ``Segment`` ->
    segment, ``Pose`` -> pose, ``OBB`` -> obb, ``Classify`` -> classify, ``Detect`` -> detect).
    ``None`` for a ``.pt``: ``YOLO(path)`` reads the task stored in the checkpoint.
    """
    model = yolo_yaml(model)
    if not str(model).endswith((".yaml", ".yml")):
        return None
    from ultralytics.nn.tasks import guess_model_task

    from .swap import load_model_yaml

    d = load_model_yaml(model)
    rows = d.get("backbone", []) + d.get("head", [])
    if any(r[2] in ("SegHead", "SegHeadLinear") for r in rows):
        return "multitask"
    return guess_model_task(d)


def load_train_config(path: str, overrides: Optional[List[str]] = None) -> Tuple[str, str, dict]:
    """Return ``(model, task, train_kwargs)`` from a YAML path and ``key=value`` overrides."""
    p = Path(yolo_yaml(path))  # a path, or a bundled YAML by name (lsdense.cfg.list_yolo_yamls)
    if not p.is_file():
        raise ValueError(f"Config {path!r} not found: give a file path or a bundled name "
                         f"(one of lsdense.cfg.list_yolo_yamls()).")
    d = yaml.safe_load(p.read_text()) or {}
    if "backbone" in d and "head" in d:  # a model YAML
        cfg: Dict[str, Any] = {"model": str(p)}
    else:
        cfg = dict(d)
        if "model" not in cfg:
            raise ValueError(f"{path}: a train-setting YAML needs 'model:' (a model YAML or .pt).")
        m = Path(cfg["model"])
        if not m.is_absolute() and not m.exists() and (p.parent / m).exists():
            cfg["model"] = str(p.parent / m)
        if "data" in cfg and not Path(str(cfg["data"])).exists() and (p.parent / str(cfg["data"])).exists():
            cfg["data"] = str(p.parent / str(cfg["data"]))
    cfg.update(parse_overrides(overrides or []))
    model = str(cfg.pop("model"))
    task = cfg.pop("task", None) or guess_task(model)
    if "data" not in cfg:
        raise ValueError(f"{path}: no dataset; pass data=path/to/data.yaml.")
    check_train_args(cfg, f"{path} with {' '.join(overrides)}" if overrides else str(path))
    return model, task, cfg


def check_train_args(cfg: Dict[str, Any], where: str = "train arguments") -> None:
    """Ultralytics' own checks of train arguments (``ultralytics.cfg.get_cfg``: known keys,
    value types and ranges), before any model or dataset is built.

    Raises:
        ValueError: an unknown key (Ultralytics names the nearest ones) or a bad value.
    """
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)  # an unknown key logs its `yolo` CLI usage, not ours
    try:
        get_cfg(overrides=dict(cfg))
    except (SyntaxError, TypeError, ValueError) as err:  # Ultralytics' kinds for these
        raise ValueError(f"{where}: {str(err).strip()}") from None
    finally:
        LOGGER.setLevel(level)


def build_model(model: str, task: Optional[str] = "detect"):
    """An Ultralytics ``YOLO`` (detect, segment, pose, obb, classify; ``None``: the task
    stored in a ``.pt``) or lsdense ``AYOLOM`` (multitask) model object."""
    if task == "multitask":
        from .multitask import AYOLOM

        return AYOLOM(model)
    from ultralytics import YOLO

    return YOLO(yolo_yaml(model), task=task)


def prepare(config: str, overrides: Sequence[str] = ()) -> Tuple[str, Optional[str], dict]:
    """Read the YAML and overrides and run the whole pre-flight before anything is built:
    the train arguments (Ultralytics' ``get_cfg``), the model YAML (modules, ``Index``
    channels, backbone weights files: :func:`lsdense.yolo.check_model_yaml`) and the data
    (:func:`lsdense.yolo.checks.preflight`, against the task the model YAML's head gives).

    Returns:
        ``(model, task, train_kwargs)`` for :func:`train_prepared`.

    Raises:
        ValueError: every problem found, one line each (key, value, fix).
    """
    from .checks import preflight
    from .register import check_model_yaml
    from .swap import load_model_yaml

    model, task, cfg = load_train_config(config, list(overrides))
    problems = []
    if str(model).endswith((".yaml", ".yml")):
        try:
            check_model_yaml(load_model_yaml(model))
        except (ValueError, FileNotFoundError) as err:
            problems.append(f"{model}: {err}")
    elif not Path(model).is_file():
        problems.append(f"model: {model!r} not found: give a model YAML or a .pt file")
    if task in (None, "detect", "segment", "pose", "obb"):
        try:
            preflight(str(cfg["data"]), task or "detect")
        except ValueError as err:
            problems += str(err).splitlines()
    if problems:
        raise ValueError("\n".join(problems))
    return model, task, cfg


def train_prepared(model: str, task: Optional[str], cfg: dict) -> Any:
    """Build the model and train it (Ultralytics' ``Model.train``); returns the final metrics.

    Besides Ultralytics' per-epoch progress bars, one line after each epoch gives the time
    left in the whole training (:func:`lsdense.yolo.demo.epoch_eta`)."""
    from ultralytics.utils import LOGGER

    from .demo import epoch_eta

    yolo = build_model(model, task)
    yolo.add_callback("on_train_epoch_end", epoch_eta(LOGGER.info, "lsdense"))
    yolo.train(**cfg)
    return getattr(yolo.trainer, "metrics", None)


def run(config: str, overrides: Sequence[str] = ()) -> Any:
    """Train from a YAML (path or bundled name) plus ``key=value`` overrides; returns the
    trainer's final metrics (dict). :func:`prepare` (all checks) then :func:`train_prepared`."""
    return train_prepared(*prepare(config, overrides))


def main(argv: Sequence[str]) -> Any:
    """``main(['configs/yolo/lolvit_s-voc.yaml', 'epochs=1'])``: :func:`run` on a tool's argument
    list (``tools/train.py``); returns the metrics.

    Raises:
        ValueError: no config given.
    """
    argv = list(argv)
    if not argv or argv[0].startswith("-"):
        raise ValueError(f"Give a YAML first, then key=value overrides.\n{__doc__}")
    return run(argv[0], argv[1:])
