"""A-YOLOM multi-task model: one ``Detect`` head and two segmentation heads parsed from YAML.

The YAML is ordinary Ultralytics rows plus ``AdaptiveConcat`` and ``SegHead``
rows; ``seg_tasks`` names the segmentation heads in row order and ``seg_loss``
(``official`` or ``lsdense``) picks the segmentation loss convention.
``Detect`` may come before the segmentation heads, as in the official model
(Detect 46, SegHead 47, 48): Ultralytics reads its head as ``model[-1]`` in the
stride probe, ``_apply`` and ``v8DetectionLoss``, so this class does those for
the ``Detect`` row wherever it is.
Ultralytics' ``parse_model`` does not hand channels to plugin modules, so it
builds everything with those rows stood in by ``nn.Identity`` (an
``AdaptiveConcat`` by an identity of its first input, which has the official
output width); one probe forward then measures the input widths and the real
modules are put in place.
"""
from __future__ import annotations

from copy import deepcopy
from typing import Dict, Sequence

import torch
import torch.nn as nn
from ultralytics.nn.modules import Detect
from ultralytics.nn.tasks import DetectionModel, yaml_model_load
from ultralytics.utils.torch_utils import initialize_weights

from lsdense.cfg import yolo_yaml

from ..modules import SEG_HEADS, AdaptiveConcat
from .loss import SEG_LOSSES, MultiTaskLoss

__all__ = ["MultiTaskModel"]


class MultiTaskModel(DetectionModel):
    """Ultralytics ``DetectionModel`` that also returns per-pixel scores of its segmentation heads.

    ``forward(img)`` returns ``(detect_output, [seg_scores, ...])``; each seg output is
    ``(B, nc + 1, H, W)`` at input resolution (background first).

    Args:
        cfg: model YAML path or dict (with ``SegHead`` rows).
        ch: input channels.
        nc: number of detection classes (overrides the YAML).
        verbose: print the model summary.

    Raises:
        ValueError: no segmentation head rows, ``seg_tasks`` not matching them, unknown ``seg_loss``.
    """

    seg_tasks: Sequence[str] = ()
    _seg_idx: Sequence[int] = ()
    _det_idx = None

    def __init__(self, cfg="ayolom-n.yaml", ch: int = 3, nc=None, verbose: bool = True):
        d = deepcopy(cfg) if isinstance(cfg, dict) else yaml_model_load(yolo_yaml(cfg))
        rows = d["backbone"] + d["head"]
        seg_rows = [i for i, r in enumerate(rows) if r[2] in SEG_HEADS]
        cat_rows = [i for i, r in enumerate(rows) if r[2] == "AdaptiveConcat"]
        if not seg_rows:
            raise ValueError(f"A multi-task YAML needs segmentation head rows ({', '.join(SEG_HEADS)}; "
                             f"see configs/yolo/ayolom-n.yaml).")
        tasks = list(d.get("seg_tasks") or ["drivable", "lane"][: len(seg_rows)])
        if len(tasks) != len(seg_rows):
            raise ValueError(f"seg_tasks {tasks} names {len(tasks)} heads but the YAML has "
                             f"{len(seg_rows)} segmentation head rows.")
        d.setdefault("seg_loss", "official")
        if d["seg_loss"] not in SEG_LOSSES:
            raise ValueError(f"seg_loss {d['seg_loss']!r}: use one of {sorted(SEG_LOSSES)}.")
        stand_in = deepcopy(d)
        nb = len(d["backbone"])
        for i in seg_rows + cat_rows:
            sec, j = ("backbone", i) if i < nb else ("head", i - nb)
            f = rows[i][0]
            stand_in[sec][j] = [f[0] if isinstance(f, list) else f, 1, "nn.Identity", []]
        super().__init__(stand_in, ch=ch, nc=nc, verbose=False)
        widths = self._output_widths(ch)

        def src(i: int, j: int) -> int:
            return i - 1 if j == -1 else j

        for i in cat_rows:
            f = rows[i][0]
            args = rows[i][3] or [1]
            ins = [widths[src(i, j)] for j in f]
            self._replace(i, AdaptiveConcat(ins, ins[0], int(args[0])), f, "AdaptiveConcat")
            self.save = sorted(set(self.save) | {src(i, j) for j in f if j != -1})
        for i in seg_rows:
            f = rows[i][0]
            args = rows[i][3] or [1]
            j = f[0] if isinstance(f, list) else f
            self._replace(i, SEG_HEADS[rows[i][2]](int(args[0]), c1=widths[src(i, j)]), f, rows[i][2])
        dets = [i for i, m in enumerate(self.model) if isinstance(m, Detect)]
        if len(dets) != 1:
            raise ValueError(f"A multi-task YAML needs exactly one Detect row; it has {len(dets)}.")
        self._det_idx = dets[0]
        if self._det_idx != len(self.model) - 1:
            self._init_detect(ch)
        d.update(channels=self.yaml["channels"], nc=self.yaml["nc"])
        self.yaml = d
        self.seg_tasks, self._seg_idx = tuple(tasks), tuple(seg_rows)
        if verbose:
            self.info()

    @torch.no_grad()
    def _init_detect(self, ch: int) -> None:
        """Strides and bias init of a Detect row that is not last (DetectionModel does it for model[-1])."""
        m, s, feats = self.model[self._det_idx], 256, []
        m.inplace = self.inplace
        h = m.register_forward_hook(lambda mod, inp, out: feats.extend(out["feats"]))
        self.model.eval()
        m.training = True  # Detect returns its raw maps in training mode
        try:
            super()._predict_once(torch.zeros(1, ch, s, s))
        finally:
            h.remove()
            self.model.train()
        m.stride = torch.tensor([s / x.shape[-2] for x in feats])
        self.stride = m.stride
        m.bias_init()

    def _apply(self, fn):
        """Also move the Detect row's stride and anchors when it is not the last row."""
        super()._apply(fn)
        if self._det_idx is not None and self._det_idx != len(self.model) - 1:
            m = self.model[self._det_idx]
            m.stride, m.anchors, m.strides = fn(m.stride), fn(m.anchors), fn(m.strides)
        return self

    def detect_head(self) -> nn.Module:
        """The ``Detect`` module (row 46 in the official layout)."""
        return self.model[self._det_idx]

    def _replace(self, i: int, module: nn.Module, f, type_name: str) -> None:
        module.i, module.f, module.type = i, f, type_name
        module.np = sum(p.numel() for p in module.parameters())
        initialize_weights(module)
        self.model[i] = module

    @torch.no_grad()
    def _output_widths(self, ch: int) -> Dict[int, int]:
        """Channels of every row's output (tensor outputs only), measured with one 256x256 forward."""
        widths = {}

        def hook(m, inp, out, i):
            if isinstance(out, torch.Tensor):
                widths[i] = out.shape[1]

        hooks = [m.register_forward_hook(lambda m, inp, out, i=i: hook(m, inp, out, i))
                 for i, m in enumerate(self.model)]
        self.model.eval()
        try:
            super()._predict_once(torch.zeros(1, ch, 256, 256))
        finally:
            for h in hooks:
                h.remove()
            self.model.train()
        return widths

    def _predict_once(self, x, profile=False, embed=None):
        """Detect output (as Ultralytics returns it) and the list of segmentation logits."""
        if not self._seg_idx or embed:
            return super()._predict_once(x, profile, embed)
        out = {}
        hooks = [self.model[i].register_forward_hook(lambda m, inp, o, i=i: out.__setitem__(i, o))
                 for i in (*self._seg_idx, self._det_idx)]
        try:
            super()._predict_once(x, profile)
        finally:
            for h in hooks:
                h.remove()
        return out[self._det_idx], [out[i] for i in self._seg_idx]

    def init_criterion(self):
        """A-YOLOM loss (v8 detection + (8 x Tversky + 24 x focal) per segmentation head)."""
        return MultiTaskLoss(self)
