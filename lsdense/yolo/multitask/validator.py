"""A-YOLOM validator: Ultralytics' detection metrics plus drivable mIoU and lane accuracy / IoU."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch
import torch.nn.functional as F
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.utils import LOGGER

from ..checks import check_data_yaml
from .loss import split_semantic
from .metrics import SegMetrics

__all__ = ["MultiTaskValidator"]


def _seg_tasks(model) -> tuple:
    for m in (model, getattr(model, "model", None)):
        if getattr(m, "seg_tasks", None):
            return tuple(m.seg_tasks)
    return ("drivable", "lane")


class MultiTaskValidator(DetectionValidator):
    """Validates a :class:`MultiTaskModel`: P, R, mAP50, mAP50-95 and per-head segmentation metrics.

    ``get_stats()`` adds ``metrics/drivable_mIoU``, ``metrics/lane_acc``, ``metrics/lane_IoU``
    (and the other two per head); ``fitness`` averages the detection fitness with
    each head's mIoU.
    """

    def __call__(self, trainer=None, model=None):
        """Run validation (checks the dataset YAML first when run stand-alone)."""
        if trainer is None and self.args.data:
            check_data_yaml(self.args.data)
        return super().__call__(trainer, model)

    def build_dataset(self, img_path: str, mode: str = "val", batch=None):
        """The multi-task dataset, letterboxed with rectangular batches."""
        from .trainer import build_multitask_dataset

        return build_multitask_dataset(self.args, img_path, batch, self.data, mode=mode, rect=True,
                                       stride=self.stride)

    def init_metrics(self, model) -> None:
        """Detection metrics plus one confusion matrix per segmentation head."""
        super().init_metrics(model)
        self.seg = SegMetrics(_seg_tasks(model))
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

    def get_stats(self) -> Dict[str, Any]:
        """Detection stats + segmentation metrics; fitness = mean(det fitness, head mIoUs)."""
        stats = super().get_stats()
        seg = self.seg.results()
        stats.update(seg)
        mious = [seg[f"metrics/{t}_mIoU"] for t in self.seg.tasks]
        stats["fitness"] = float(np.nanmean([stats.get("fitness", 0.0), *mious]))
        return stats

    def print_results(self) -> None:
        """Ultralytics' detection table, then one line per segmentation head."""
        super().print_results()
        for k, v in self.seg.results().items():
            LOGGER.info(f"{k:>24s} {v:.4f}")
