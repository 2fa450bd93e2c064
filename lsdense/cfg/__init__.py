"""Configs shipped inside the package: the Ultralytics model and train-setting YAMLs (``yolo/``)
and the MMDetection / MMSegmentation configs (``mm/``: the paper configs, ``_base_/schedules``,
``quickstart/``).

They are package data, as Ultralytics ships its own under ``ultralytics/cfg/models/``, so an
installed lsdense finds them from any working directory; in a checkout ``configs`` is a symlink
to ``lsdense/cfg/mm`` (and ``configs/yolo`` reaches ``lsdense/cfg/yolo``). ``configs/real/``
(the overfit checks on ``../shared/realdata``) lives there too but is not shipped: its data
root is relative to the checkout. Standard library only (no framework import).
"""
from __future__ import annotations

from pathlib import Path
from typing import List

__all__ = ["YOLO_CFG_DIR", "yolo_yaml", "list_yolo_yamls", "MM_CFG_DIR", "mm_config",
           "list_mm_configs"]

YOLO_CFG_DIR = Path(__file__).resolve().parent / "yolo"
MM_CFG_DIR = Path(__file__).resolve().parent / "mm"
_MM_SHIPPED = ("", "quickstart")  # the folders of MM_CFG_DIR that are package data (not real/)
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


def list_mm_configs() -> List[str]:
    """The bundled mm configs as paths relative to :data:`MM_CFG_DIR`, sorted
    (``'fpn_lsnet_t_ade20k.py'``, ..., ``'quickstart/retinanet_lsnet_t_toycoco.py'``)."""
    return sorted(str(p.relative_to(MM_CFG_DIR)) for sub in _MM_SHIPPED
                  for p in (MM_CFG_DIR / sub).glob("*.py"))


def mm_config(config):
    """Resolve an MMDetection / MMSegmentation config to a path, as :func:`yolo_yaml` does.

    Order: ``config`` itself when it names an existing file (relative to the working directory);
    else the bundled config when ``config`` is a bundled name (``'retinanet_lsnet_t_coco.py'``,
    ``'quickstart/retinanet_lsnet_t_toycoco.py'``, the ``.py`` optional) or spelled as in a
    checkout (``'configs/retinanet_lsnet_t_coco.py'``); else ``config`` unchanged, for the
    caller to report a file that exists nowhere. The bundled files' ``_base_`` entries are
    relative to their own folder, so mmengine's ``Config.fromfile`` resolves them inside the
    package. Arguments and return value as :func:`yolo_yaml`'s.
    """
    if not isinstance(config, (str, Path)) or Path(config).is_file():
        return config
    parts = Path(config).parts
    if parts[:1] == ("configs",):
        parts = parts[1:]
    name = "/".join(parts)
    if not name.endswith(".py"):
        name += ".py"
    if name in list_mm_configs():
        return str(MM_CFG_DIR / name)
    return config
