"""A-YOLOM predictor: detections (Ultralytics) plus per-task masks at the original image size."""
from __future__ import annotations

import torch
from ultralytics.models.yolo.detect import DetectionPredictor
from ultralytics.utils import ops

__all__ = ["MultiTaskPredictor"]


class MultiTaskPredictor(DetectionPredictor):
    """Each ``Results`` gets ``boxes``, ``seg_masks`` ({task: bool (H, W)}) and a
    ``semantic_mask`` (0 background, k = k-th task; later tasks drawn on top) for plotting."""

    def postprocess(self, preds, img, orig_imgs, **kwargs):
        """Run Ultralytics' detection post-processing, then undo the letterbox on the seg logits.

        ``preds``: the PyTorch model's ``(detection, [seg logits per task])``, or the flat
        list an exported artifact gives through ``AutoBackend`` (ONNX, TorchScript, OpenVINO,
        ...): ``[detection, seg logits per task]`` in the model's output order.
        """
        if isinstance(preds, (list, tuple)) and len(preds) == 2 and isinstance(preds[1], (list, tuple)):
            det, seg = preds
        else:
            det, seg = preds[0], list(preds[1:])
        results = super().postprocess(det, img, orig_imgs, **kwargs)
        tasks = getattr(self.model.model, "seg_tasks", None) or ("drivable", "lane")
        for b, r in enumerate(results):
            sem = None
            r.seg_masks = {}
            for k, (task, logits) in enumerate(zip(tasks, seg)):
                m = ops.scale_masks(logits[b:b + 1].float(), r.orig_shape)[0].argmax(0) > 0
                r.seg_masks[task] = m
                sem = torch.zeros_like(m, dtype=torch.uint8) if sem is None else sem
                sem[m] = k + 1
            r.update(semantic_mask=sem)
        return results
