"""A-YOLOM metrics, in two conventions reported side by side.

Dataset-wide (lsdense, ``SegMetrics``; keys ``metrics/<task>_mIoU`` ...): one
confusion matrix ``[[TN, FP], [FN, TP]]`` summed over all validation pixels,
letterbox padding ignored (accumulated by Ultralytics' ``SemanticMetrics``).
The A-YOLOM convention below keeps its own code: ``SemanticMetrics`` sums one
matrix over the set and ignores padding, the official metrics average per-image
matrices with padding counted as background.

A-YOLOM (the official validator, ``SegmentationMetric`` in
``ultralytics/yolo/utils/metrics.py`` and ``update_metrics_seg`` in
``ultralytics/yolo/v8/DecSeg/val.py``; keys ``...(A-YOLOM)``): one 2x2 matrix
per image at the letterboxed network resolution, padding counted as
background, the per-image values averaged over images. Per image: IoU_k =
cm[k,k] / (union_k + 1e-9) (so 0 when ground truth and prediction are both
empty), mIoU = mean of background and foreground IoU, accuracy =
(TP / (TP + FN + 1e-12) + TN / (TN + FP + 1e-12)) / 2. Detection P and R are
taken at the maximum-recall point of the confidence grid (``i =
r.mean(0).argmax()`` in the official ``ap_per_class``, after YOLOP), not at
max F1. AP is Ultralytics 8.0.105's (the official fork's): the precision
envelope closed with a ramp from the last (recall, precision) point to
(1, 0), 101-point interpolation; Ultralytics 8.4 drops precision to 0 right
after the last recall, which gives lower values when recall stays below 1. Fitness (best.pt, early stopping): ``0.1 mAP50 + 0.9 mAP50-95 +
sum over tasks of (IoU + mIoU)``.
"""
from __future__ import annotations

from typing import Dict, Mapping, Tuple

import numpy as np
import torch

__all__ = ["confusion", "miou", "fg_iou", "balanced_accuracy", "SegMetrics", "ayolom_image_metrics",
           "AYOLOMSegMetrics", "max_recall_pr", "ayolom_fitness", "ayolom_compute_ap",
           "ayolom_ap_per_class"]


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
    """Dataset-wide metrics per segmentation head: one 2x2 confusion matrix over all pixels.

    The matrix is accumulated by Ultralytics' ``SemanticMetrics`` (one class: a 2x2 matrix,
    255 ignored; float32 counts). The reported numbers are computed here from it: for one
    class its own ``miou`` is the foreground IoU only, and it has no balanced accuracy.
    """

    def __init__(self, tasks=("drivable", "lane")):
        from ultralytics.utils.metrics import SemanticMetrics

        self.tasks = tuple(tasks)
        self._acc = {t: SemanticMetrics({0: t}) for t in self.tasks}

    @property
    def cm(self) -> Dict[str, np.ndarray]:
        """Per task the confusion matrix ``[[TN, FP], [FN, TP]]`` (int64; zeros before any update)."""
        return {t: (np.zeros((2, 2), np.int64) if m.matrix is None else
                    m.matrix.round().cpu().numpy().astype(np.int64)) for t, m in self._acc.items()}

    def update(self, task: str, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``logits`` (B, 2, H, W) at target resolution, ``target`` (B, H, W) 0/1/255."""
        self._acc[task].update_stats(logits.argmax(1), target)

    def results(self) -> Dict[str, float]:
        """``metrics/<task>_mIoU``, ``_IoU`` and ``_acc`` per head."""
        out = {}
        for t, cm in self.cm.items():
            out[f"metrics/{t}_mIoU"] = miou(cm)
            out[f"metrics/{t}_IoU"] = fg_iou(cm)
            out[f"metrics/{t}_acc"] = balanced_accuracy(cm)
        return out


def ayolom_image_metrics(cm: np.ndarray) -> Tuple[float, float, float]:
    """(IoU, mIoU, accuracy) of one image's 2x2 matrix ``[[TN, FP], [FN, TP]]``, official formulas.

    IoU is 0 (not NaN) when prediction and ground truth have no foreground; accuracy's
    sensitivity term is then 0 too, as in the official code.
    """
    cm = np.asarray(cm, dtype=np.float64)
    inter = np.diag(cm)
    iou = inter / (cm.sum(0) + cm.sum(1) - inter + 1e-9)
    (tn, fp), (fn, tp) = cm
    acc = (tp / (tp + fn + 1e-12) + tn / (tn + fp + 1e-12)) / 2
    return float(iou[1]), float(iou.mean()), float(acc)


class AYOLOMSegMetrics:
    """Official A-YOLOM segmentation metrics: per-image confusion matrices, averaged over images.

    ``update`` takes targets with 255 on letterbox padding; padding counts as background.
    """

    def __init__(self, tasks=("drivable", "lane")):
        self.tasks = tuple(tasks)
        self.sums = {t: np.zeros(3) for t in self.tasks}
        self.images = {t: 0 for t in self.tasks}

    def update(self, task: str, scores: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``scores`` (B, 2, H, W) at target resolution, ``target`` (B, H, W) 0/1/255."""
        pred = scores.argmax(1)
        t = (target == 1).long()
        for b in range(pred.shape[0]):
            cm = torch.bincount(t[b].flatten() * 2 + pred[b].flatten(), minlength=4).reshape(2, 2)
            self.sums[task] += ayolom_image_metrics(cm.cpu().numpy())
            self.images[task] += 1

    def results(self) -> Dict[str, float]:
        """``metrics/<task>_IoU(A-YOLOM)``, ``_mIoU(A-YOLOM)`` and ``_acc(A-YOLOM)`` per head."""
        out = {}
        for t in self.tasks:
            iou, m, acc = self.sums[t] / max(self.images[t], 1)
            out.update({f"metrics/{t}_IoU(A-YOLOM)": float(iou), f"metrics/{t}_mIoU(A-YOLOM)": float(m),
                        f"metrics/{t}_acc(A-YOLOM)": float(acc)})
        return out


def max_recall_pr(p_curve: np.ndarray, r_curve: np.ndarray) -> Tuple[float, float]:
    """Mean precision and recall at the confidence of maximum mean recall (A-YOLOM, after YOLOP).

    Args:
        p_curve, r_curve: (num_classes, 1000) precision and recall over Ultralytics' confidence
            grid (``DetMetrics.box.p_curve`` / ``r_curve``).
    """
    p_curve, r_curve = np.asarray(p_curve), np.asarray(r_curve)
    if p_curve.size == 0 or r_curve.ndim != 2 or len(r_curve) == 0:
        return 0.0, 0.0
    i = int(r_curve.mean(0).argmax())
    return float(p_curve[:, i].mean()), float(r_curve[:, i].mean())


def ayolom_fitness(map50: float, map50_95: float, seg: Mapping[str, Tuple[float, float]]) -> float:
    """Official best.pt fitness: ``0.1 mAP50 + 0.9 mAP50-95 + sum over tasks of (IoU + mIoU)``.

    Args:
        map50, map50_95: detection mAPs (0-1).
        seg: task -> (IoU, mIoU) in the A-YOLOM convention.
    """
    return float(0.1 * map50 + 0.9 * map50_95 + sum(iou + m for iou, m in seg.values()))


def ayolom_compute_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """AP of one class as Ultralytics 8.0.105 (the official fork) computes it.

    The curve is closed with (0, 1) in front and (1, 0) at the end, so between the
    last recall and 1 the precision envelope ramps linearly to 0; then the
    envelope (running maximum from the right) is integrated on 101 recall points.

    Args:
        recall, precision: cumulative curves over detections sorted by confidence, shape (N,).
    """
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(np.concatenate(([1.0], precision, [0.0])))))
    x = np.linspace(0, 1, 101)
    trapezoid = getattr(np, "trapezoid", None) or np.trapz
    return float(trapezoid(np.interp(x, mrec, mpre), x))


def ayolom_ap_per_class(tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray,
                        target_cls: np.ndarray, eps: float = 1e-16) -> np.ndarray:
    """(classes in the targets, IoU thresholds) AP array with :func:`ayolom_compute_ap`.

    Args:
        tp: (N, T) true-positive flags of N detections at T IoU thresholds (0.5:0.95 -> T = 10).
        conf, pred_cls: (N,) confidence and class of each detection.
        target_cls: (M,) class of each ground-truth box.

    mAP50 = ``ap[:, 0].mean()``, mAP50-95 = ``ap.mean()`` (classes without detections count 0).
    """
    tp = np.asarray(tp, dtype=np.float64).reshape(len(conf), -1)
    order = np.argsort(-np.asarray(conf), kind="stable")
    tp, pred_cls = tp[order], np.asarray(pred_cls)[order]
    classes, nt = np.unique(np.asarray(target_cls), return_counts=True)
    ap = np.zeros((len(classes), tp.shape[1]))
    for ci, c in enumerate(classes):
        k = pred_cls == c
        if not k.any():
            continue
        tpc, fpc = tp[k].cumsum(0), (1 - tp[k]).cumsum(0)
        recall, precision = tpc / (nt[ci] + eps), tpc / (tpc + fpc)
        for j in range(tp.shape[1]):
            ap[ci, j] = ayolom_compute_ap(recall[:, j], precision[:, j])
    return ap
