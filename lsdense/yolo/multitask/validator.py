"""A-YOLOM validator: Ultralytics' detection metrics plus drivable mIoU and lane accuracy / IoU,
each also in the official A-YOLOM convention (see :mod:`.metrics`)."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch.nn.functional as F
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.utils import LOGGER

from ..checks import check_data_yaml
from .data import build_multitask_dataset
from .loss import split_semantic
from .metrics import (AYOLOMSegMetrics, SegMetrics, ayolom_ap_per_class, ayolom_fitness,
                      max_recall_pr)

__all__ = ["MultiTaskValidator"]


def _seg_tasks(model) -> tuple:
    for m in (model, getattr(model, "model", None)):
        if getattr(m, "seg_tasks", None):
            return tuple(m.seg_tasks)
    return ("drivable", "lane")


class MultiTaskValidator(DetectionValidator):
    """Validates a :class:`MultiTaskModel`: P, R, mAP50, mAP50-95 and per-head segmentation metrics.

    ``get_stats()`` returns, beside Ultralytics' detection keys (P and R at max F1):

    * ``metrics/precision(B,A-YOLOM)``, ``metrics/recall(B,A-YOLOM)``: at the maximum-recall
      point, as the A-YOLOM tables report; ``metrics/mAP50(B,A-YOLOM)``,
      ``metrics/mAP50-95(B,A-YOLOM)``: AP as Ultralytics 8.0.105 (ramp to recall 1);
    * ``metrics/<task>_{mIoU,IoU,acc}``: one confusion matrix over the whole set, padding ignored;
    * ``metrics/<task>_{mIoU,IoU,acc}(A-YOLOM)``: per image, padding counted, averaged over images;
    * ``fitness``: the official ``0.1 mAP50 + 0.9 mAP50-95 + sum over tasks of (IoU + mIoU)``
      (A-YOLOM convention for every term), which picks ``best.pt`` and drives early stopping.
    """

    def __call__(self, trainer=None, model=None):
        """Run validation (checks the dataset YAML first when run stand-alone)."""
        if trainer is None and self.args.data:
            check_data_yaml(self.args.data)
        return super().__call__(trainer, model)

    def build_dataset(self, img_path: str, mode: str = "val", batch=None):
        """The multi-task dataset, letterboxed with rectangular batches."""
        return build_multitask_dataset(self.args, img_path, batch, self.data, mode=mode, rect=True,
                                       stride=self.stride)

    def init_metrics(self, model) -> None:
        """Detection metrics plus one confusion matrix per segmentation head."""
        super().init_metrics(model)
        self.seg = SegMetrics(_seg_tasks(model))
        self.seg_ayolom = AYOLOMSegMetrics(self.seg.tasks)
        self._seg_preds = []

    def preprocess(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        """Move the packed mask to the device with the rest of the batch."""
        batch = super().preprocess(batch)
        batch["semantic_mask"] = batch["semantic_mask"].to(self.device, non_blocking=True)
        return batch

    def postprocess(self, preds):
        """NMS on the detection output; keep the segmentation logits for ``update_metrics``."""
        det, seg = preds
        self._seg_preds = list(seg)
        return super().postprocess(det)

    def update_metrics(self, preds, batch: Dict[str, Any]) -> None:
        """Detection matching (Ultralytics) and segmentation confusion counts."""
        super().update_metrics(preds, batch)
        targets = split_semantic(batch["semantic_mask"], len(self.seg.tasks))
        for task, logits, t in zip(self.seg.tasks, self._seg_preds, targets):
            if logits.shape[-2:] != t.shape[-2:]:
                logits = F.interpolate(logits.float(), size=t.shape[-2:], mode="bilinear",
                                       align_corners=False)
            self.seg.update(task, logits, t)
            self.seg_ayolom.update(task, logits, t)

    def get_stats(self) -> Dict[str, Any]:
        """Detection stats + both segmentation conventions; fitness as the official code."""
        raw = {k: np.concatenate(v, 0) for k, v in self.metrics.stats.items() if len(v)}
        stats = super().get_stats()  # processes and then clears self.metrics.stats
        ap = (ayolom_ap_per_class(raw["tp"], raw["conf"], raw["pred_cls"], raw["target_cls"])
              if "tp" in raw and "target_cls" in raw else np.zeros((0, 10)))
        stats["metrics/mAP50(B,A-YOLOM)"] = float(ap[:, 0].mean()) if len(ap) else 0.0
        stats["metrics/mAP50-95(B,A-YOLOM)"] = float(ap.mean()) if len(ap) else 0.0
        box = self.metrics.box
        p, r = max_recall_pr(getattr(box, "p_curve", []), getattr(box, "r_curve", []))
        stats["metrics/precision(B,A-YOLOM)"], stats["metrics/recall(B,A-YOLOM)"] = p, r
        stats.update(self.seg.results())
        official = self.seg_ayolom.results()
        stats.update(official)
        stats["fitness"] = ayolom_fitness(
            stats["metrics/mAP50(B,A-YOLOM)"], stats["metrics/mAP50-95(B,A-YOLOM)"],
            {t: (official[f"metrics/{t}_IoU(A-YOLOM)"], official[f"metrics/{t}_mIoU(A-YOLOM)"])
             for t in self.seg.tasks})
        return stats

    def print_results(self) -> None:
        """Ultralytics' detection table, then the A-YOLOM-convention and dataset-wide lines."""
        super().print_results()
        p, r = max_recall_pr(getattr(self.metrics.box, "p_curve", []),
                             getattr(self.metrics.box, "r_curve", []))
        LOGGER.info(f"{'P, R at max recall (A-YOLOM)':>30s} {p:.4f} {r:.4f}")
        for k, v in {**self.seg_ayolom.results(), **self.seg.results()}.items():
            LOGGER.info(f"{k:>30s} {v:.4f}")
