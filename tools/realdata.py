"""The real samples of ``../shared/realdata`` (issue 9): where they are, and ready-to-train copies.

A checkout-only helper of the tests, ``tools/demo.py`` and ``configs/real/`` (not in the wheel:
the folder is this project's development data). It sits next to the repository
(``<repo>/../shared/realdata``, where CI finds it); ``LSDENSE_REALDATA`` points elsewhere. Its files are read-only: a tool that writes next
to its data (Ultralytics' label caches) gets a copy (:func:`coco8_overfit_yaml`).
Nothing here needs a framework; the mm configs that use the sets are ``configs/real/``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Union

import yaml

__all__ = ["REALDATA", "IMAGE_SUFFIXES", "realdata_root", "real_images", "demo_images",
           "coco8_overfit_yaml", "RealDataMissing"]

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
# what the readers of the three frameworks decode (cv2); upper-case suffixes count too
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class RealDataMissing(FileNotFoundError):
    """The real-data folder (or one of its sets) is not there."""


def realdata_root(subset: Optional[str] = None) -> Path:
    """The real-data folder, or one set in it (``'coco_real'``, ``'photos'``, ...).

    Raises:
        RealDataMissing: the folder is absent (message names where it was looked for).
    """
    root = Path(os.environ.get("LSDENSE_REALDATA") or REALDATA)
    path = root / subset if subset else root
    if not path.is_dir():
        raise RealDataMissing(f"Real data not found: {path}. It ships next to the repository "
                              f"(../shared/realdata); set LSDENSE_REALDATA to its folder.")
    return path


def real_images(folder: Union[str, Path], limit: Optional[int] = None) -> List[Path]:
    """Image files of ``folder`` (JPEG, PNG, ... any case), sorted by name; other files skipped."""
    files = sorted(p for p in Path(folder).iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return files[:limit] if limit else files


def demo_images() -> Dict[str, List[Path]]:
    """The demos' real images: ``{'photos': [...], 'bdd100k': [...]}`` (BDD100K val frames),
    or ``{}`` when the real-data folder or one of the two sets is absent."""
    try:
        return {"photos": real_images(realdata_root("photos")),
                "bdd100k": real_images(realdata_root("bdd100k_real") / "images/100k/val")}
    except RealDataMissing:
        return {}


def coco8_overfit_yaml(dst: Union[str, Path]) -> Path:
    """Copy ``coco8_yolo`` to ``dst`` and write a dataset YAML that trains and validates on all 8.

    The shipped ``coco8.yaml`` has a ``path`` relative to the project root, which Ultralytics
    would resolve against its own ``DATASETS_DIR``; the copy's YAML has an absolute ``path``.
    ``train`` and ``val`` both list ``images/train`` and ``images/val`` (an overfit check: the
    metric is measured on the training images). Returns the YAML path.
    """
    src = realdata_root("coco8_yolo")
    dst = Path(dst).resolve()
    shutil.copytree(src, dst, dirs_exist_ok=True)
    data = yaml.safe_load((src / "coco8.yaml").read_text())
    splits = ["images/train", "images/val"]
    data.update(path=str(dst), train=splits, val=splits, test=None)
    data.pop("download", None)  # never fetch: the files are here
    out = dst / "coco8_overfit.yaml"
    out.write_text("# coco8_yolo copied from ../shared/realdata; train = val (overfit check)\n"
                   + yaml.safe_dump(data, sort_keys=False))
    return out
