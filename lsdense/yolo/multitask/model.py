"""A-YOLOM multi-task model: one ``Detect`` head and two ``SegHead`` heads parsed from YAML.

The YAML is ordinary Ultralytics rows (``Detect`` last, as Ultralytics' stride
probe expects) plus ``SegHead`` rows; ``seg_tasks`` names the segmentation heads
in row order. Ultralytics' ``parse_model`` builds everything with the
``SegHead`` rows stood in by ``nn.Identity`` (it does not hand channels to plugin
modules); one probe forward then measures each head's input width and the real
heads are put in place.
"""
from __future__ import annotations

from copy import deepcopy
from typing import List, Sequence

import torch
import torch.nn as nn
from ultralytics.nn.tasks import DetectionModel, yaml_model_load
from ultralytics.utils.torch_utils import initialize_weights

from ..modules import SegHead
from .loss import MultiTaskLoss

__all__ = ["MultiTaskModel"]


class MultiTaskModel(DetectionModel):
    """Ultralytics ``DetectionModel`` that also returns per-pixel logits of its ``SegHead`` rows.

    ``forward(img)`` returns ``(detect_output, [seg_logits, ...])``; each seg output is
    ``(B, nc + 1, H, W)`` at input resolution.

    Args:
        cfg: model YAML path or dict (with ``SegHead`` rows).
        ch: input channels.
        nc: number of detection classes (overrides the YAML).
        verbose: print the model summary.
    """

    seg_tasks: Sequence[str] = ()
    _seg_idx: Sequence[int] = ()

    def __init__(self, cfg="configs/yolo/ayolom-n.yaml", ch: int = 3, nc=None, verbose: bool = True):
        d = deepcopy(cfg) if isinstance(cfg, dict) else yaml_model_load(cfg)
        rows = d["backbone"] + d["head"]
        seg_rows = [i for i, r in enumerate(rows) if r[2] == "SegHead"]
        if not seg_rows:
            raise ValueError("A multi-task YAML needs SegHead rows (see configs/yolo/ayolom-n.yaml).")
        tasks = list(d.get("seg_tasks") or ["drivable", "lane"][: len(seg_rows)])
        if len(tasks) != len(seg_rows):
            raise ValueError(f"seg_tasks {tasks} names {len(tasks)} heads but the YAML has "
                             f"{len(seg_rows)} SegHead rows.")
        stand_in = deepcopy(d)
        nb = len(d["backbone"])
        for i in seg_rows:
            sec, j = ("backbone", i) if i < nb else ("head", i - nb)
            stand_in[sec][j] = [rows[i][0], 1, "nn.Identity", []]
        super().__init__(stand_in, ch=ch, nc=nc, verbose=False)
        widths = self._input_widths(seg_rows, ch)
        for i in seg_rows:
            args = rows[i][3] or [1]
            head = SegHead(int(args[0]), c1=widths[i])
            old = self.model[i]
            head.i, head.f, head.type = old.i, old.f, "SegHead"
            head.np = sum(p.numel() for p in head.parameters())
            initialize_weights(head)
            self.model[i] = head
        d.update(channels=self.yaml["channels"], nc=self.yaml["nc"])
        self.yaml = d
        self.seg_tasks, self._seg_idx = tuple(tasks), tuple(seg_rows)
        if verbose:
            self.info()

    @torch.no_grad()
    def _input_widths(self, idx: List[int], ch: int) -> dict:
        """Channels entering each stand-in row, measured with one 256x256 forward."""
        widths = {}
        hooks = [self.model[i].register_forward_pre_hook(
            lambda m, inp, i=i: widths.__setitem__(i, inp[0].shape[1])) for i in idx]
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
        seg = {}
        hooks = [self.model[i].register_forward_hook(
            lambda m, inp, out, i=i: seg.__setitem__(i, out)) for i in self._seg_idx]
        try:
            det = super()._predict_once(x, profile)
        finally:
            for h in hooks:
                h.remove()
        return det, [seg[i] for i in self._seg_idx]

    def init_criterion(self):
        """A-YOLOM loss (v8 detection + 8 x Tversky + 24 x focal per segmentation head)."""
        return MultiTaskLoss(self)

    def seg_heads(self) -> List[nn.Module]:
        """The ``SegHead`` modules, in ``seg_tasks`` order."""
        return [self.model[i] for i in self._seg_idx]
