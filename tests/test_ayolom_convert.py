"""tools/convert_ayolom.py on a checkpoint written in the official fork's layout.

The test writes the file itself: classes standing in for the fork's own
(``ultralytics.nn.tasks.MultiModel``, ``ultralytics.nn.modules.conv.Concat_dropout``,
the fork's ``ultralytics.nn.modules.head.Detect`` / ``Segment``,
``ultralytics.yolo.utils.IterableSimpleNamespace``) are registered under the
fork's module paths only while pickling, with the fork's forward logic
(official.md); the converter then runs on stock Ultralytics. Every tensor must
land under its key and the converted model's outputs must equal the
fork-layout model's.
"""
import importlib.util
import os
import sys
import types
from copy import deepcopy
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ultralytics")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from lsdense.yolo import AYOLOM  # noqa: E402
from lsdense.yolo.multitask import MultiTaskModel  # noqa: E402
from lsdense.yolo.multitask.convert import convert_ayolom, load_fork_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _fork_class(module, name, base=nn.Module, **body):
    cls = type(name, (base,), body)
    cls.__module__, cls.__qualname__ = module, name
    return cls


def _concat_dropout_forward(self, x):  # official: hard gate, else the upsampled input alone
    if torch.sigmoid(self.weight) > 0.5:
        return self.conv(torch.cat(x, self.d))
    return x[0]


def _segment_forward(self, x):  # official Segment.forward
    return self.cv3(self.cv2(self.upsample(self.cv1(x[0]))))


def _detect_forward(self, x):  # official (Ultralytics 8.0.105) Detect.forward, inference branch
    from ultralytics.utils.tal import dist2bbox, make_anchors

    shape = x[0].shape
    x = [torch.cat((self.cv2[i](x[i]), self.cv3[i](x[i])), 1) for i in range(self.nl)]
    anchors, strides = (a.transpose(0, 1) for a in make_anchors(x, self.stride, 0.5))
    x_cat = torch.cat([xi.view(shape[0], self.no, -1) for xi in x], 2)
    box, cls = x_cat.split((self.reg_max * 4, self.nc), 1)
    dbox = dist2bbox(self.dfl(box), anchors.unsqueeze(0), xywh=True, dim=1) * strides
    return torch.cat((dbox, cls.sigmoid()), 1)


def _multimodel_forward(self, x):  # official MultiBaseModel._forward_once: outputs of the task heads
    outputs, y = [], []
    for m in self.model:
        if m.f != -1:
            x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
        x = m(x)
        if type(m).__name__ in ("Detect", "Segment"):
            outputs.append(x)
        y.append(x if m.i in self.save else None)
    return outputs


FORK = {
    "Concat_dropout": _fork_class("ultralytics.nn.modules.conv", "Concat_dropout",
                                  forward=_concat_dropout_forward),
    "Segment": _fork_class("ultralytics.nn.modules.head", "Segment", forward=_segment_forward),
    "Detect": _fork_class("ultralytics.nn.modules.head", "Detect", forward=_detect_forward),
    "MultiModel": _fork_class("ultralytics.nn.tasks", "MultiModel", forward=_multimodel_forward),
    "IterableSimpleNamespace": _fork_class("ultralytics.yolo.utils", "IterableSimpleNamespace",
                                           base=types.SimpleNamespace),
}


def _new(cls, **attrs):
    obj = cls.__new__(cls)
    nn.Module.__init__(obj)
    for k, v in attrs.items():
        setattr(obj, k, v)
    return obj


def _fork_model(scale, seed=0):
    """A model in the official layout (rows as yolov8-bdd-v4-one-dropout-individual-<scale>.yaml):
    stock Ultralytics layers for rows 0-45 except the fork's Concat_dropout, then Detect 46, drivable
    Segment 47, lane Segment 48; all weights and BatchNorm statistics random, exactly fp16-representable."""
    from ultralytics.nn.modules.block import DFL

    ours = MultiTaskModel(str(ROOT / f"configs/yolo/ayolom-{scale}.yaml"), verbose=False)
    rows = []
    for i in range(46):
        m = deepcopy(ours.model[i])
        if type(m).__name__ == "AdaptiveConcat":
            m = _new(FORK["Concat_dropout"], d=1, weight=m.weight, conv=m.conv, i=i, f=m.f,
                     type="ultralytics.nn.modules.conv.Concat_dropout")
        rows.append(m)
    det = ours.model[46]
    rows.append(_new(FORK["Detect"], nc=det.nc, nl=det.nl, reg_max=det.reg_max, no=det.no,
                     stride=det.stride.clone(), cv2=deepcopy(det.cv2), cv3=deepcopy(det.cv3),
                     dfl=deepcopy(det.dfl), i=46, f=[15, 18, 21], type="ultralytics.nn.modules.head.Detect"))
    for i, (src, f) in zip((47, 48), ((47, 45), (48, 33))):  # drivable from row 45, lane from row 33
        h = ours.model[src]
        rows.append(_new(FORK["Segment"], nc=1, npr=32, cv1=deepcopy(h.cv1), upsample=deepcopy(h.upsample),
                         cv2=deepcopy(h.cv2), cv3=deepcopy(h.cv3), dfl=DFL(16), sigmoid=nn.Sigmoid(),
                         i=i, f=[f], type="ultralytics.nn.modules.head.Segment"))
    save = sorted({j for i, m in enumerate(rows)
                   for j in ([m.f] if isinstance(m.f, int) else m.f) if j != -1})
    args = FORK["IterableSimpleNamespace"](task="multi", imgsz=640, single_cls=True)
    model = _new(FORK["MultiModel"], model=nn.Sequential(*rows), save=save, names={0: "car"},
                 stride=[torch.tensor([8.0, 16.0, 32.0])], inplace=True, args=args,
                 yaml={"tnc": 3, "scale": scale})
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point() and not name.endswith("dfl.conv.weight"):
                r = torch.rand(t.shape, generator=g)
                t.copy_(r * 0.5 + 0.5 if "running_var" in name else
                        torch.full_like(t, 5.0) if name.endswith(".weight") and t.numel() == 1 else
                        (r - 0.5) * (0.6 if t.dim() > 1 else 0.4))
    return model.half().float().eval()


def _write_fork_checkpoint(monkeypatch, model, path):
    """Pickle ``model`` as the fork saves it: classes under the fork's module paths, fp16, an EMA copy."""
    import ultralytics.nn.modules.conv as conv
    import ultralytics.nn.modules.head as head
    import ultralytics.nn.tasks as tasks

    with monkeypatch.context() as mp:
        for mod, name in ((conv, "Concat_dropout"), (head, "Segment"), (head, "Detect"),
                          (tasks, "MultiModel")):
            mp.setattr(mod, name, FORK[name], raising=False)
        fork_utils = types.ModuleType("ultralytics.yolo.utils")
        fork_utils.IterableSimpleNamespace = FORK["IterableSimpleNamespace"]
        mp.setitem(sys.modules, "ultralytics.yolo", types.ModuleType("ultralytics.yolo"))
        mp.setitem(sys.modules, "ultralytics.yolo.utils", fork_utils)
        torch.save({"epoch": 299, "best_fitness": np.float64(2.2), "model": None,
                    "ema": deepcopy(model).half(), "updates": 1000, "optimizer": None,
                    "train_args": {"task": "multi", "epochs": 300, "batch": 12}, "date": "2023-10-01",
                    "version": "8.0.105"}, path)
    # the fork's classes are gone again: the converter sees stock Ultralytics only
    assert not hasattr(tasks, "MultiModel") and "ultralytics.yolo.utils" not in sys.modules


@pytest.mark.parametrize("scale", ["n"])
def test_convert_official_checkpoint_every_tensor_and_outputs(monkeypatch, tmp_path, scale):
    fork = _fork_model(scale)
    src, dst = tmp_path / "best.pt", tmp_path / "ayolom-n.pt"
    _write_fork_checkpoint(monkeypatch, fork, src)
    fork_state = fork.state_dict()
    assert len(fork_state) == 613  # official.md: 613 tensors in the published n checkpoint

    # loading the official file directly names the converter, in one line
    with pytest.raises(ValueError) as err:
        AYOLOM(str(src))
    msg = str(err.value)
    assert "\n" not in msg and "python tools/convert_ayolom.py" in msg and str(src) in msg

    res = convert_ayolom(src, dst)
    assert res["scale"] == scale and res["tensors"] == 613 and res["loaded"] == 611
    assert sorted(res["dropped"]) == ["model.47.dfl.conv.weight", "model.48.dfl.conv.weight"]

    model = AYOLOM(str(dst)).model.float().eval()
    ours = model.state_dict()
    for key, value in fork_state.items():  # every official tensor under the same key
        _, i, rest = key.split(".", 2)
        if i in ("47", "48") and rest.startswith("dfl."):
            continue
        assert torch.equal(ours[key], value), key
    assert len(ours) == 611

    x = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        det_ref, drivable_ref, lane_ref = fork(x)
        (det, _), (drivable, lane) = model(x)
    assert torch.allclose(det, det_ref, atol=1e-4, rtol=1e-4)
    assert torch.allclose(drivable, drivable_ref, atol=1e-5) and torch.allclose(lane, lane_ref, atol=1e-5)
    assert not torch.allclose(drivable, lane, atol=1e-3)  # the two heads differ: order is checked


def test_converter_refuses_foreign_globals_and_other_models(tmp_path, capsys):

    bad = tmp_path / "evil.pt"
    torch.save({"model": os.system}, bad)  # a global outside the allow-list
    with pytest.raises(ValueError, match=r"references (posix|nt)\.system"):
        load_fork_checkpoint(bad)
    det = tmp_path / "det.pt"
    torch.save({"model": nn.Sequential(nn.Conv2d(3, 8, 3))}, det)
    with pytest.raises(ValueError, match="holds the network"):
        convert_ayolom(det, tmp_path / "x.pt")
    spec = importlib.util.spec_from_file_location("convert_ayolom", ROOT / "tools/convert_ayolom.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert cli.main([str(bad), str(tmp_path / "y.pt")]) == 1
    assert "does not load" in capsys.readouterr().err
