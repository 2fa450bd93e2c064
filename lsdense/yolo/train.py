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

__all__ = ["run", "main", "load_train_config", "build_model", "guess_task", "parse_overrides",
           "check_train_args"]


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


def guess_task(model: str) -> str:
    """'multitask' for a YAML or checkpoint of an A-YOLOM model, else 'detect'."""
    model = yolo_yaml(model)
    if str(model).endswith((".yaml", ".yml")) and Path(model).is_file():
        d = yaml.safe_load(Path(model).read_text())
        rows = d.get("backbone", []) + d.get("head", [])
        return "multitask" if any(r[2] in ("SegHead", "SegHeadLinear") for r in rows) else "detect"
    return "detect"


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


def build_model(model: str, task: str = "detect"):
    """An Ultralytics ``YOLO`` (detect) or lsdense ``AYOLOM`` (multitask) model object."""
    if task == "multitask":
        from .multitask import AYOLOM

        return AYOLOM(model)
    from ultralytics import YOLO

    return YOLO(yolo_yaml(model), task=task)


def _check_detect_data(data: str) -> None:
    from ultralytics.data.utils import img2label_paths

    from .checks import check_data_yaml, check_image_channels, check_label_dir

    d = check_data_yaml(data)
    if d.get("download"):
        return
    check_image_channels(d)
    nc = len(d["names"]) if isinstance(d.get("names"), (list, dict)) else d.get("nc")
    for k in ("train", "val"):
        for v in d[k] if isinstance(d[k], list) else [d[k]]:
            img_dir = Path(d["path"]) / v
            label_dir = Path(img2label_paths([str(img_dir / "x.jpg")])[0]).parent
            if label_dir.is_dir():
                check_label_dir(label_dir, nc)


def run(config: str, overrides: Sequence[str] = ()) -> Any:
    """Train from a YAML (path or bundled name) plus ``key=value`` overrides; returns the
    trainer's final metrics (dict)."""
    model, task, cfg = load_train_config(config, list(overrides))
    if task == "detect":
        _check_detect_data(str(cfg["data"]))
    yolo = build_model(model, task)
    yolo.train(**cfg)
    return getattr(yolo.trainer, "metrics", None)


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
