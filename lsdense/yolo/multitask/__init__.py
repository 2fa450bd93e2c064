"""A-YOLOM ("You Only Look at Once for Real-time and Generic Multi-task", Wang, Wu, Zhang;
IEEE TVT 2024) as Ultralytics extensions: detection + drivable area + lane line.

``AYOLOM('configs/yolo/ayolom-n.yaml').train(data='bdd100k.yaml', ...)``
uses :class:`MultiTaskTrainer`, :class:`MultiTaskValidator` and
:class:`MultiTaskPredictor` (subclasses of Ultralytics' detection classes).
"""
from __future__ import annotations

from pathlib import Path
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


def _is_official_checkpoint(path) -> bool:
    """True when ``path`` reads as a checkpoint of the official A-YOLOM code (the converter's
    restricted unpickler and row check, :mod:`lsdense.yolo.multitask.convert`)."""
    from .convert import _fork_model, load_fork_checkpoint

    try:
        _fork_model(load_fork_checkpoint(path), str(path))
    except (ValueError, FileNotFoundError):
        return False
    return True


class AYOLOM(Model):
    """Ultralytics ``Model`` for the A-YOLOM multi-task task (``task='multitask'``).

    Args:
        model: an A-YOLOM model YAML (a path, or a bundled name such as ``'ayolom-n.yaml'``;
            :func:`lsdense.cfg.list_yolo_yamls`) or a trained ``.pt``.
        verbose: print the model summary.
    """

    def __init__(self, model: str = "ayolom-n.yaml", verbose: bool = False):
        from lsdense.cfg import yolo_yaml  # a bundled YAML by bare name, from any directory

        try:
            super().__init__(model=yolo_yaml(model), task="multitask", verbose=verbose)
        except Exception as err:
            if str(model).endswith(".pt") and _is_official_checkpoint(model):
                stem = Path(str(model)).stem
                raise ValueError(
                    f"{model} is a checkpoint of the official A-YOLOM code, whose own classes stock "
                    f"Ultralytics cannot load ({type(err).__name__}: {err}): convert it once with "
                    f"python tools/convert_ayolom.py {model} {stem}-lsdense.pt (or, without the "
                    f"checkout, lsdense.yolo.multitask.convert.convert_ayolom('{model}', "
                    f"'{stem}-lsdense.pt')), then load AYOLOM('{stem}-lsdense.pt').") from None
            raise

    @property
    def task_map(self) -> Dict[str, Dict[str, Any]]:
        """The multi-task model, trainer, validator and predictor classes."""
        return {"multitask": {"model": MultiTaskModel, "trainer": MultiTaskTrainer,
                              "validator": MultiTaskValidator, "predictor": MultiTaskPredictor}}
