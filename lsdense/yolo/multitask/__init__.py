"""A-YOLOM ("You Only Look at Once for Real-time and Generic Multi-task", Wang, Wu, Zhang;
IEEE TVT 2024) as Ultralytics extensions: detection + drivable area + lane line.

``AYOLOM('configs/yolo/ayolom-n.yaml').train(data='bdd100k.yaml', ...)``
uses :class:`MultiTaskTrainer`, :class:`MultiTaskValidator` and
:class:`MultiTaskPredictor` (subclasses of Ultralytics' detection classes).
"""
from __future__ import annotations

from typing import Any, Dict

from ultralytics.engine.model import Model

from .data import MultiTaskDataset
from .loss import (MultiTaskLoss, ayolom_focal_loss, ayolom_tversky_loss, focal_loss, seg_loss,
                   tversky_loss)
from .metrics import (AYOLOMSegMetrics, SegMetrics, ayolom_ap_per_class, ayolom_compute_ap,
                      ayolom_fitness, ayolom_image_metrics, balanced_accuracy, confusion, fg_iou,
                      max_recall_pr, miou)
from .model import MultiTaskModel
from .predictor import MultiTaskPredictor
from .trainer import MultiTaskTrainer
from .validator import MultiTaskValidator

__all__ = ["AYOLOM", "MultiTaskModel", "MultiTaskTrainer", "MultiTaskValidator",
           "MultiTaskPredictor", "MultiTaskDataset", "MultiTaskLoss", "SegMetrics", "AYOLOMSegMetrics",
           "ayolom_tversky_loss", "ayolom_focal_loss", "tversky_loss", "focal_loss", "seg_loss",
           "confusion", "miou", "fg_iou", "balanced_accuracy", "ayolom_image_metrics", "max_recall_pr",
           "ayolom_fitness", "ayolom_compute_ap", "ayolom_ap_per_class"]


class AYOLOM(Model):
    """Ultralytics ``Model`` for the A-YOLOM multi-task task (``task='multitask'``).

    Args:
        model: an A-YOLOM model YAML (a path, or a bundled name such as ``'ayolom-n.yaml'``;
            :func:`lsdense.cfg.list_yolo_yamls`) or a trained ``.pt``.
        verbose: print the model summary.
    """

    def __init__(self, model: str = "ayolom-n.yaml", verbose: bool = False):
        from lsdense.cfg import yolo_yaml  # a bundled YAML by bare name, from any directory

        super().__init__(model=yolo_yaml(model), task="multitask", verbose=verbose)

    @property
    def task_map(self) -> Dict[str, Dict[str, Any]]:
        """The multi-task model, trainer, validator and predictor classes."""
        return {"multitask": {"model": MultiTaskModel, "trainer": MultiTaskTrainer,
                              "validator": MultiTaskValidator, "predictor": MultiTaskPredictor}}
