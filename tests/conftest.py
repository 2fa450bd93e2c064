"""Fixtures shared by the test files (YOLO fixtures stay in the YOLO test files).

* ``one_thread``: torch on one intra-op thread for the test, restored after (reference loops and
  ONNX Runtime comparisons are cheaper and steadier single-threaded on a shared machine).
* ``randomize_bn``: a function giving every ``BatchNorm2d`` of a model non-trivial statistics and
  affine parameters (seeded), so that a mistake in folding them into a conv shows.
* ``mm_toy_data``: toy COCO / ADE20K / VOC sets (``lsdense.toydata``) written once per session.

``tools/`` is on ``sys.path``: ``import benchmark``, ``from realdata import ...`` (checkout only).

Ultralytics runs offline, never installs packages and keeps its settings in a temporary
folder, for every test module (set here, before any test module imports ultralytics).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Callable

import pytest
import torch
import torch.nn as nn

# the checkout's tools (benchmark.py, realdata.py: not in the wheel) import as modules
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
os.environ.setdefault("YOLO_OFFLINE", "1")  # no network: fonts/weights/datasets are never fetched
os.environ.setdefault("YOLO_AUTOINSTALL", "False")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="yolo-cfg-"))


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _randomize_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics, so a mistake in folding them would show."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.1)


@pytest.fixture
def randomize_bn() -> Callable[..., None]:
    return _randomize_bn


@pytest.fixture(scope="session")
def mm_toy_data(tmp_path_factory) -> Path:
    """``coco/`` (16 train, 8 val), ``ade/`` (8, 4) and ``voc/`` (8, 4), seed 0."""
    from lsdense.toydata.ade import make_ade20k
    from lsdense.toydata.coco import make_coco
    from lsdense.toydata.voc import make_voc

    base = tmp_path_factory.mktemp("toy")
    make_coco(base / "coco", num_train=16, num_val=8, seed=0)
    make_ade20k(base / "ade", num_train=8, num_val=4, seed=0)
    make_voc(base / "voc", num_train=8, num_val=4, seed=0)
    return base
