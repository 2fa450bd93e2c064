"""A-YOLOM loss: Ultralytics' v8 detection loss + per segmentation head 8 x Tversky + 24 x focal.

Segmentation heads output ``(B, 2, H, W)`` logits (background, foreground);
targets are ``(B, H, W)`` with 0/1 and 255 for ignored (padding) pixels.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F

__all__ = ["tversky_loss", "focal_loss", "seg_loss", "MultiTaskLoss", "TVERSKY_WEIGHT", "FOCAL_WEIGHT"]

TVERSKY_WEIGHT, FOCAL_WEIGHT = 8.0, 24.0  # A-YOLOM, Sec. III-D


def _fg_logit(logits: torch.Tensor) -> torch.Tensor:
    """Foreground-vs-background logit of 2-channel logits (softmax p_fg = sigmoid(l1 - l0))."""
    return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits[:, 0]


def tversky_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.7,
                 smooth: float = 1.0, ignore_index: int = 255) -> torch.Tensor:
    """``1 - (TP + s) / (TP + alpha * FN + (1 - alpha) * FP + s)`` over the valid pixels.

    alpha = 0.7 weighs missed foreground (FN) more than false alarms, which
    favours recall on thin structures such as lane lines (A-YOLOM).
    """
    valid = target != ignore_index
    p = torch.sigmoid(_fg_logit(logits))[valid]
    t = target[valid].float()
    tp, fn, fp = (p * t).sum(), ((1 - p) * t).sum(), (p * (1 - t)).sum()
    return 1 - (tp + smooth) / (tp + alpha * fn + (1 - alpha) * fp + smooth)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0,
               ignore_index: int = 255) -> torch.Tensor:
    """Mean binary focal loss ``-a_t (1 - p_t)^gamma log p_t`` over the valid pixels.

    ``a_t = alpha`` for foreground pixels and ``1 - alpha`` for background (Lin et al.).
    """
    valid = target != ignore_index
    z = _fg_logit(logits)[valid]
    t = target[valid].float()
    if t.numel() == 0:
        return z.sum() * 0
    ce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    p_t = torch.exp(-ce)
    a_t = alpha * t + (1 - alpha) * (1 - t)
    return (a_t * (1 - p_t) ** gamma * ce).mean()


def seg_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """One segmentation head's A-YOLOM loss: 8 x Tversky(alpha 0.7) + 24 x focal(0.25, 2)."""
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    return TVERSKY_WEIGHT * tversky_loss(logits, target) + FOCAL_WEIGHT * focal_loss(logits, target)


def split_semantic(mask: torch.Tensor, n_heads: int = 2) -> Tuple[torch.Tensor, ...]:
    """Decode the packed mask (bit k = head k foreground, 255 = ignored) into one target per head."""
    ignore = mask == 255
    outs = []
    for k in range(n_heads):
        t = (mask.long() >> k) & 1
        t[ignore] = 255
        outs.append(t)
    return tuple(outs)


class MultiTaskLoss:
    """Detection loss of Ultralytics (``v8DetectionLoss``) plus the A-YOLOM segmentation loss per head.

    Args:
        model: the :class:`MultiTaskModel` (de-paralleled); ``model.seg_tasks`` names the heads.
    """

    def __init__(self, model):
        from ultralytics.utils.loss import v8DetectionLoss

        self.det = v8DetectionLoss(model)
        self.tasks: Sequence[str] = tuple(model.seg_tasks)

    def __call__(self, preds, batch: Dict[str, torch.Tensor]):
        """Return ``(loss vector x batch size, dict of detached items)`` as Ultralytics trainers expect."""
        det_preds, seg_preds = preds
        det_loss, items = self.det(det_preds, batch)
        bs = batch["img"].shape[0]
        targets = split_semantic(batch["semantic_mask"].to(det_loss.device), len(self.tasks))
        seg = torch.stack([seg_loss(p, t) for p, t in zip(seg_preds, targets)])
        items = {**items, **{f"{name}_seg": v.detach() for name, v in zip(self.tasks, seg)}}
        return torch.cat([det_loss.flatten(), seg * bs]), items
