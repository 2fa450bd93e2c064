"""A-YOLOM segmentation metrics from binary confusion matrices.

``confusion`` counts ``[[TN, FP], [FN, TP]]`` over the valid pixels; drivable
area is scored by mIoU over {background, drivable}; lane lines by accuracy =
(sensitivity + specificity) / 2 (A-YOLOM's balanced pixel accuracy) and by the
IoU of the lane class.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import torch

__all__ = ["confusion", "miou", "fg_iou", "balanced_accuracy", "SegMetrics"]


def confusion(pred: torch.Tensor, target: torch.Tensor, ignore_index: int = 255) -> np.ndarray:
    """2x2 confusion matrix ``[[TN, FP], [FN, TP]]`` of binary maps (rows: truth, cols: prediction)."""
    valid = target != ignore_index
    t, p = target[valid].long(), pred[valid].long()
    return torch.bincount(t * 2 + p, minlength=4).reshape(2, 2).cpu().numpy().astype(np.int64)


def _iou(cm: np.ndarray, k: int) -> float:
    inter = cm[k, k]
    union = cm[k, :].sum() + cm[:, k].sum() - inter
    return float(inter / union) if union else float("nan")


def miou(cm: np.ndarray) -> float:
    """Mean IoU over background and foreground."""
    return float(np.nanmean([_iou(cm, 0), _iou(cm, 1)]))


def fg_iou(cm: np.ndarray) -> float:
    """IoU of the foreground class."""
    return _iou(cm, 1)


def balanced_accuracy(cm: np.ndarray) -> float:
    """(sensitivity + specificity) / 2 = (TP / (TP + FN) + TN / (TN + FP)) / 2."""
    (tn, fp), (fn, tp) = cm
    sens = tp / (tp + fn) if tp + fn else float("nan")
    spec = tn / (tn + fp) if tn + fp else float("nan")
    return float(np.nanmean([sens, spec]))


class SegMetrics:
    """Accumulates one confusion matrix per segmentation head and reports the A-YOLOM metrics."""

    def __init__(self, tasks=("drivable", "lane")):
        self.tasks = tuple(tasks)
        self.cm = {t: np.zeros((2, 2), np.int64) for t in self.tasks}

    def update(self, task: str, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``logits`` (B, 2, H, W) at target resolution, ``target`` (B, H, W)."""
        self.cm[task] += confusion(logits.argmax(1), target)

    def results(self) -> Dict[str, float]:
        """``metrics/<task>_mIoU``, ``_IoU`` and ``_acc`` per head."""
        out = {}
        for t, cm in self.cm.items():
            out[f"metrics/{t}_mIoU"] = miou(cm)
            out[f"metrics/{t}_IoU"] = fg_iou(cm)
            out[f"metrics/{t}_acc"] = balanced_accuracy(cm)
        return out
