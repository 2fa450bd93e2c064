"""Distributed training for real: tools/dist_train.sh (torchrun), 2 processes on CPU with the
gloo backend (mmengine's env_cfg.dist_cfg.backend), the RetinaNet quickstart with a subset of
LSNet-T's levels. PyTorch DDP (find_unused_parameters=False, mmengine's default) stops at the
second iteration if any backbone parameter gets no gradient, so this also proves that a
backbone asked for fewer levels holds no unused module."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("mmdet")

import lsdense.mmdet  # noqa: E402,F401  (weights-only allow-list for reading the checkpoint)
from lsdense.mm.demo import QUICKSTART, toy_data_options  # noqa: E402
from lsdense.toydata.coco import make_coco  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="torch built without distributed gloo support")
def test_dist_train_two_cpu_processes_with_subset_of_levels(tmp_path):
    make_coco(tmp_path / "coco", num_train=8, num_val=2, seed=0)
    opts = toy_data_options("coco", tmp_path / "coco", workers=0)
    opts.update({
        "env_cfg.dist_cfg.backend": "gloo",
        # strides 8, 16, 32 (+ two extra FPN levels): the stride-64 stage is not needed
        "model.backbone.out_indices": "[0,1,2]",
        "model.neck.in_channels": "[64,128,256]",
        "train_dataloader.batch_size": 2,  # 8 images / (2 processes x 2) = 2 iterations an epoch
        "train_cfg.max_epochs": 2,
        "train_cfg.val_begin": 3,  # no validation: training is what is tested
        "default_hooks.checkpoint.interval": 2,
        "default_hooks.logger.interval": 1,
    })
    env = {**os.environ, "PYTHON": sys.executable, "PORT": str(_free_port()),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    work = tmp_path / "work"
    cmd = ["bash", str(ROOT / "tools" / "dist_train.sh"), str(QUICKSTART["det"]), "2",
           "--work-dir", str(work), "--cfg-options", *[f"{k}={v}" for k, v in opts.items()]]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    out = res.stdout + res.stderr
    assert "Expected to have finished reduction" not in out, out[-4000:]
    assert res.returncode == 0, out[-4000:]
    logs = "".join(p.read_text() for p in work.rglob("*.log"))
    assert "Distributed training: True" in logs and "GPU number: 2" in logs
    assert re.search(r"Epoch\(train\)\s*\[2\]\[2/2\]", logs)  # 2 epochs of 2 iterations each
    ckpt = torch.load(work / "epoch_2.pth", map_location="cpu")  # weights-only default
    assert ckpt["meta"]["iter"] == 4
    keys = ckpt["state_dict"]
    assert "backbone.blocks3.2.mixer.conv.c.weight" in keys
    assert not any(k.startswith("backbone.blocks4.") for k in keys)  # pruned, not merely unused


@pytest.mark.skipif(torch.cuda.is_available(), reason="NCCL is fine on a machine with CUDA")
def test_nccl_without_cuda_is_a_preflight_error():
    from mmengine.config import Config

    from lsdense.mm.checks import PreflightError
    from lsdense.mm.runner import setup_cpu_distributed

    cfg = Config(dict(launcher="pytorch", env_cfg=dict(dist_cfg=dict(backend="nccl"))))
    with pytest.raises(PreflightError, match=r"env_cfg\.dist_cfg\.backend='nccl' needs CUDA GPUs "
                                             r".*--cfg-options env_cfg\.dist_cfg\.backend=gloo"):
        setup_cpu_distributed(cfg)
    assert not torch.distributed.is_initialized()
    cfg = Config(dict(launcher="none", env_cfg=dict(dist_cfg=dict(backend="nccl"))))
    assert setup_cpu_distributed(cfg) is False and "model_wrapper_cfg" not in cfg
