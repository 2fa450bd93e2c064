"""Configs shipped inside the package: the Ultralytics model and train-setting YAMLs (``yolo/``).

They are package data, as Ultralytics ships its own under ``ultralytics/cfg/models/``, so an
installed lsdense finds them from any working directory; in a checkout ``configs/yolo`` is a
symlink to ``lsdense/cfg/yolo``. Standard library only (no framework import).
"""
from __future__ import annotations

from pathlib import Path
from typing import List

__all__ = ["YOLO_CFG_DIR", "yolo_yaml", "list_yolo_yamls"]

YOLO_CFG_DIR = Path(__file__).resolve().parent / "yolo"
_CHECKOUT_DIR = ("configs", "yolo")  # the checkout spelling, kept working outside a checkout


def list_yolo_yamls() -> List[str]:
    """File names of the bundled YOLO / A-YOLOM YAMLs, sorted (``'ayolom-n.yaml'``, ...)."""
    return sorted(p.name for p in YOLO_CFG_DIR.glob("*.yaml"))


def yolo_yaml(model):
    """Resolve a YOLO model (or train-setting) YAML to a path, as Ultralytics resolves its own.

    Order: ``model`` itself when it names an existing file (relative to the working directory);
    else the bundled file of that name when ``model`` is a bare name (``'ayolom-n.yaml'``) or
    spelled as in a checkout (``'configs/yolo/ayolom-n.yaml'``); else ``model`` unchanged, so
    Ultralytics' own names (``'yolov8n.yaml'``), ``.pt`` checkpoints and dicts pass through to
    the framework, which reports a file that exists nowhere.

    Args:
        model: a path or name (``str`` / ``Path``), or anything else (returned unchanged).

    Returns:
        ``str`` path of the bundled file when one was picked, else ``model`` as given.
    """
    if not isinstance(model, (str, Path)) or Path(model).is_file():
        return model
    p = Path(model)
    if p.parts[:-1] in ((), _CHECKOUT_DIR) and (YOLO_CFG_DIR / p.name).is_file():
        return str(YOLO_CFG_DIR / p.name)
    return model
