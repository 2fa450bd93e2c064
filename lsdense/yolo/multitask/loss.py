"""A-YOLOM loss: Ultralytics' v8 detection loss + per segmentation head (8 x Tversky + 24 x focal).

Segmentation heads output ``(B, 2, H, W)`` scores (background, foreground);
targets are ``(B, H, W)`` with 0/1 and 255 on letterbox padding and
mosaic/affine borders. Two conventions (the model YAML's ``seg_loss``):

* ``official`` (default; ``SegLoss`` in ``ultralytics/yolo/v8/DecSeg/train.py``
  of the official repository): an independent sigmoid on *each* channel,
  target ``(1 - mask, mask)``, both channels in both terms, padding and borders
  are background (255 -> 0). Tversky
  ``1 - (TP + 1) / (TP + 0.7 FN + 0.3 FP + 1)`` with sums over batch, channels
  and pixels; focal ``-[y a log p + (1 - y)(1 - a) log(1 - p)] |y - p|^2``,
  a = 0.25, mean over all elements (``torchvision.ops.sigmoid_focal_loss``,
  which is exactly this for 0/1 targets).
* ``lsdense`` (option): foreground probability = softmax over the two channels,
  padding (255) ignored, alpha-balanced focal loss on the foreground logit.

Each head's loss is multiplied by the batch size (as the official code and
Ultralytics' detection loss do).
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F

__all__ = ["ayolom_tversky_loss", "ayolom_focal_loss", "tversky_loss", "focal_loss", "seg_loss",
           "split_semantic", "MultiTaskLoss", "TVERSKY_WEIGHT", "FOCAL_WEIGHT", "SEG_LOSSES"]

TVERSKY_WEIGHT, FOCAL_WEIGHT = 8.0, 24.0  # A-YOLOM Sec. III-D; official hyp TL 8.0, FL 24.0
IGNORE = 255


def _two_channel_target(target: torch.Tensor) -> torch.Tensor:
    """(B, H, W) 0/1/255 -> (B, 2, H, W) float ``(1 - m, m)``; 255 (padding) counts as background."""
    m = (target == 1).float()
    return torch.stack((1 - m, m), 1)


def ayolom_tversky_loss(scores: torch.Tensor, target: torch.Tensor, alpha: float = 0.7,
                        smooth: float = 1.0) -> torch.Tensor:
    """Official A-YOLOM Tversky loss (scalar).

    Args:
        scores: (B, 2, H, W) head outputs; ``p = sigmoid(scores)`` per channel.
        target: (B, H, W) with 1 = foreground; anything else (0, 255) is background.
        alpha: weight of FN (0.7), FP gets ``1 - alpha``.
        smooth: added to numerator and denominator (1).

    Returns ``1 - (TP + s) / (TP + alpha FN + (1 - alpha) FP + s)``, sums over all elements.
    """
    y = _two_channel_target(target)
    p = torch.sigmoid(scores.float())
    tp, fn, fp = (y * p).sum(), (y * (1 - p)).sum(), ((1 - y) * p).sum()
    return 1 - (tp + smooth) / (tp + alpha * fn + (1 - alpha) * fp + smooth)


def ayolom_focal_loss(scores: torch.Tensor, target: torch.Tensor, alpha: float = 0.25,
                      gamma: float = 2.0) -> torch.Tensor:
    """Official A-YOLOM focal loss (scalar): mean of ``-[y a log p + (1-y)(1-a) log(1-p)] |y - p|^gamma``.

    Same shapes as :func:`ayolom_tversky_loss`. For 0/1 targets this is exactly
    ``torchvision.ops.sigmoid_focal_loss`` (``alpha_t * BCE * (1 - p_t)^gamma``,
    ``1 - p_t = |y - p|``), which is used.
    """
    from torchvision.ops import sigmoid_focal_loss

    return sigmoid_focal_loss(scores.float(), _two_channel_target(target), alpha=alpha, gamma=gamma,
                              reduction="mean")


def _fg_logit(logits: torch.Tensor) -> torch.Tensor:
    """Foreground-vs-background logit of 2-channel logits (softmax p_fg = sigmoid(l1 - l0))."""
    return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits[:, 0]


def tversky_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.7,
                 smooth: float = 1.0, ignore_index: int = IGNORE) -> torch.Tensor:
    """lsdense option: ``1 - (TP + s) / (TP + alpha FN + (1 - alpha) FP + s)`` on the softmax
    foreground probability over the non-ignored pixels.

    alpha = 0.7 weighs missed foreground (FN) more than false alarms, which
    favours recall on thin structures such as lane lines (A-YOLOM).
    """
    valid = target != ignore_index
    p = torch.sigmoid(_fg_logit(logits))[valid]
    t = target[valid].float()
    tp, fn, fp = (p * t).sum(), ((1 - p) * t).sum(), (p * (1 - t)).sum()
    return 1 - (tp + smooth) / (tp + alpha * fn + (1 - alpha) * fp + smooth)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0,
               ignore_index: int = IGNORE) -> torch.Tensor:
    """lsdense option: mean binary focal loss ``-a_t (1 - p_t)^gamma log p_t`` of the foreground
    logit over the non-ignored pixels (``a_t = alpha`` on foreground, ``1 - alpha`` on background)."""
    valid = target != ignore_index
    z = _fg_logit(logits)[valid]
    t = target[valid].float()
    if t.numel() == 0:
        return z.sum() * 0
    ce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    p_t = torch.exp(-ce)
    a_t = alpha * t + (1 - alpha) * (1 - t)
    return (a_t * (1 - p_t) ** gamma * ce).mean()


SEG_LOSSES = {"official": (ayolom_tversky_loss, ayolom_focal_loss), "lsdense": (tversky_loss, focal_loss)}


def seg_loss(scores: torch.Tensor, target: torch.Tensor, convention: str = "official") -> torch.Tensor:
    """One segmentation head's A-YOLOM loss, ``8 x Tversky + 24 x focal`` (not yet times batch size).

    Args:
        scores: (B, 2, H, W) head outputs (resized bilinearly if the target size differs).
        target: (B, H, W), 0/1 with 255 on padding.
        convention: ``'official'`` or ``'lsdense'`` (module docstring).
    """
    if convention not in SEG_LOSSES:
        raise ValueError(f"seg_loss convention {convention!r}: use one of {sorted(SEG_LOSSES)}.")
    if scores.shape[-2:] != target.shape[-2:]:
        scores = F.interpolate(scores, size=target.shape[-2:], mode="bilinear", align_corners=False)
    tversky, focal = SEG_LOSSES[convention]
    return TVERSKY_WEIGHT * tversky(scores, target) + FOCAL_WEIGHT * focal(scores, target)


def split_semantic(mask: torch.Tensor, n_heads: int = 2) -> Tuple[torch.Tensor, ...]:
    """Decode the packed mask (bit k = head k foreground, 255 = padding) into one target per head."""
    ignore = mask == IGNORE
    outs = []
    for k in range(n_heads):
        t = (mask.long() >> k) & 1
        t[ignore] = IGNORE
        outs.append(t)
    return tuple(outs)


class MultiTaskLoss:
    """Detection loss of Ultralytics (``v8DetectionLoss``) plus the A-YOLOM segmentation loss per head.

    Args:
        model: the :class:`MultiTaskModel` (de-paralleled); ``model.seg_tasks`` names the heads,
            ``model.yaml['seg_loss']`` picks the convention (default ``official``).
    """

    def __init__(self, model):
        from ultralytics.utils.loss import v8DetectionLoss

        det = model.detect_head() if hasattr(model, "detect_head") else model.model[-1]
        # v8DetectionLoss reads the head as model.model[-1]; the official layout has Detect at row 46
        view = SimpleNamespace(args=model.args, parameters=model.parameters, model=[det],
                               class_weights=getattr(model, "class_weights", None))
        self.det = v8DetectionLoss(view)
        self.tasks: Sequence[str] = tuple(model.seg_tasks)
        self.convention = (getattr(model, "yaml", None) or {}).get("seg_loss", "official")

    def __call__(self, preds, batch: Dict[str, torch.Tensor]):
        """Return ``(loss vector x batch size, dict of detached items)`` as Ultralytics trainers expect."""
        det_preds, seg_preds = preds
        det_loss, items = self.det(det_preds, batch)
        bs = batch["img"].shape[0]
        targets = split_semantic(batch["semantic_mask"].to(det_loss.device), len(self.tasks))
        seg = torch.stack([seg_loss(p, t, self.convention) for p, t in zip(seg_preds, targets)])
        items = {**items, **{f"{name}_seg": v.detach() for name, v in zip(self.tasks, seg)}}
        return torch.cat([det_loss.flatten(), seg * bs]), items
