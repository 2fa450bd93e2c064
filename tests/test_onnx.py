"""ONNX export of every backbone family: torch.onnx.export and Ultralytics, onnxruntime parity.

A model is exported in its export form (``lsdense.models.prepare_export``: LiSA as real-DFT
matmuls, SKA on rank-4 tensors); these tests check the exported graphs against the eager
reference model at fixed and at dynamic input sizes, and that an unprepared model is refused
with the fix. Opset 17 (LiSA needs GridSample, 16+).
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from lsdense.models import create_backbone, prepare_export, set_form

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
OPSET = 17
DYNAMIC = {"x": {0: "batch", 2: "height", 3: "width"}}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _export(model: nn.Module, x: torch.Tensor, path: Path, dynamic: bool) -> "ort.InferenceSession":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about shape-dependent Python values
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=["x"], dynamic_axes=DYNAMIC if dynamic else None)
    onnx.checker.check_model(str(path))
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _assert_parity(model: nn.Module, sess: "ort.InferenceSession", x: torch.Tensor) -> None:
    with torch.no_grad():
        ref = model(x)
    ref = [ref] if isinstance(ref, torch.Tensor) else ref
    outs = sess.run(None, {"x": x.numpy()})
    assert len(outs) == len(ref)
    for r, o in zip(ref, outs):
        assert o.shape == tuple(r.shape)
        assert (torch.from_numpy(o) - r).abs().max() / r.abs().max() < 1e-4


# (variant, constructor overrides, export input, dynamic, further inputs for the dynamic graph).
# LiSANet variants with one block per stage: every block type and stage transition of the
# full models (their full depth is exported through Ultralytics below) at a fraction of the
# export time (the TorchScript exporter takes ~1 s per LiSA block on this machine).
CASES = [
    ("lsnet_t", {}, (1, 3, 64, 96), True, [(2, 3, 96, 64)]),
    ("lolvit_s", {}, (1, 3, 64, 96), True, [(2, 3, 96, 128)]),
    ("lisanet_s", dict(depths=(1, 1, 1, 1)), (1, 3, 64, 96), False, []),
    ("lisanet_b", dict(depths=(1, 1, 1, 1)), (1, 3, 64, 64), True, [(2, 3, 96, 64)]),
    ("hylisanet_s", dict(depths=(1, 1, 1, 1)), (1, 3, 64, 96), True, [(2, 3, 96, 64)]),
    # exported at a grid other than the stored 14x14, so the position-embedding resize is traced
    ("lisanet_i", dict(depth=2), (1, 3, 64, 96), True, [(2, 3, 96, 64)]),
]


@pytest.mark.parametrize("name, kwargs, shape, dynamic, others", CASES, ids=[c[0] for c in CASES])
def test_backbone_exports_and_matches_onnxruntime(name, kwargs, shape, dynamic, others, tmp_path,
                                                  randomize_bn):
    torch.manual_seed(0)
    model = create_backbone(name, **kwargs).eval()
    randomize_bn(model)
    x = torch.randn(*shape)
    sess = _export(prepare_export(copy.deepcopy(model)), x, tmp_path / f"{name}.onnx", dynamic)
    _assert_parity(model, sess, x)
    for other in others:  # another batch and grid through the same dynamic graph
        _assert_parity(model, sess, torch.randn(*other))


def test_lisa_export_graph_has_no_fft_and_runs_at_training_grid(tmp_path):
    """Exported at the stored grid (kernels not resized) and then run at another size.

    The export form must resample the kernels in the graph (interpolation matrices, no
    GridSample) even when the traced size is the stored one, or the dynamic graph would bake
    in the 4x4 grid.
    """
    from lsdense.models.lisanet import LiSA
    torch.manual_seed(0)
    attn = LiSA(16, num_heads=2, num_patterns=3, grid_size=(4, 4)).eval()
    x = torch.randn(1, 16, 4, 4)
    sess = _export(set_form(copy.deepcopy(attn), "export"), x, tmp_path / "lisa.onnx", dynamic=True)
    ops = {n.op_type for n in onnx.load(str(tmp_path / "lisa.onnx")).graph.node}
    assert "DFT" not in ops and "GridSample" not in ops and "MatMul" in ops
    _assert_parity(attn, sess, x)
    _assert_parity(attn, sess, torch.randn(3, 16, 5, 7))


def test_dynamo_exporter_matches(tmp_path):
    """The dynamo-based exporter (torch's default) takes the same export path."""
    import onnxscript  # noqa: F401  (the dynamo exporter needs it; a [dev] dependency)
    from lsdense.models.lisanet import LiSA
    torch.manual_seed(0)
    attn = LiSA(16, num_heads=2, num_patterns=3, grid_size=(4, 4)).eval()
    x = torch.randn(1, 16, 5, 6)
    path = tmp_path / "lisa_dynamo.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(set_form(copy.deepcopy(attn), "export"), (x,), str(path), dynamo=True,
                          opset_version=18,
                          input_names=["x"], verbose=False)
    _assert_parity(attn, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]), x)


@pytest.mark.parametrize("name", ["lsnet_t", "lisanet_s"])
@pytest.mark.parametrize("dynamo", [False, True])
def test_unprepared_model_is_refused_with_the_fix(name, dynamo, tmp_path):
    """SKA's rank-5 view and LiSA's complex FFTs are no export form: exporting the model as
    built (reference forms) or fused (fast forms) stops with the call that fixes it."""
    model = create_backbone(name, **({"depths": (1, 1, 1, 1)} if name == "lisanet_s" else {}))
    for m in (model.eval(), copy.deepcopy(model).fuse()):
        with pytest.raises(Exception, match="prepare_export"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(m, (torch.randn(1, 3, 64, 64),), str(tmp_path / "m.onnx"),
                              dynamo=dynamo, opset_version=18)


_YOLO_EXPORT = r"""
import json, sys, numpy as np, torch
import lsdense.yolo
from ultralytics import YOLO
yaml, dynamic = sys.argv[1], sys.argv[2] == "1"
torch.manual_seed(0)
model = YOLO(yaml)
net = model.model.float().eval()
f = model.export(format="onnx", imgsz=64, dynamic=dynamic, simplify=False)
import onnxruntime as ort
sess = ort.InferenceSession(f, providers=["CPUExecutionProvider"])
res = []
for shape in ([(1, 3, 64, 64)] + ([(2, 3, 96, 64)] if dynamic else [])):
    x = torch.rand(*shape)
    with torch.no_grad():
        ref = net(x)[0].numpy()
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    res.append({"shape": list(out.shape), "ref_shape": list(ref.shape),
                "maxdiff": float(np.abs(out - ref).max()), "scale": float(np.abs(ref).max())})
print(json.dumps(res))
"""


@pytest.mark.slow  # ~25 s each on a quiet 2-core machine (full-depth model through Ultralytics)
@pytest.mark.parametrize("yaml, dynamic", [("yolov8n-lisanet_s.yaml", False),
                                           ("yolo11n-hylisanet_s.yaml", True)])
def test_ultralytics_export_lisanet(yaml, dynamic, tmp_path):
    """``YOLO(yaml).export(format='onnx')`` (static, and ``dynamic=True`` at two input
    sizes) matches PyTorch, with the full-depth LiSANet-S / HyLiSANet-S."""
    pytest.importorskip("ultralytics")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               YOLO_OFFLINE="1", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", _YOLO_EXPORT, str(ROOT / "configs/yolo" / yaml),
                          "1" if dynamic else "0"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    for out in json.loads(res.stdout.strip().splitlines()[-1]):
        assert out["shape"] == out["ref_shape"]
        assert out["maxdiff"] <= 1e-4 * max(1.0, out["scale"])
