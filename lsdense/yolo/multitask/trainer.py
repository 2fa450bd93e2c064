"""A-YOLOM trainer: Ultralytics' ``DetectionTrainer`` with the BDD100K multi-task dataset and model."""
from __future__ import annotations

from copy import copy

from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import RANK
from ultralytics.utils.torch_utils import unwrap_model

from ..checks import check_data_yaml
from .data import build_multitask_dataset
from .model import MultiTaskModel
from .validator import MultiTaskValidator

__all__ = ["MultiTaskTrainer", "AYOLOM_TRAIN_DEFAULTS"]

# The published A-YOLOM run (official repository: ultralytics/train.py and the fork's
# cfg/default.yaml): 300 epochs, batch 12 (on 3 GPUs), 640, SGD (lr0 0.01, momentum 0.937),
# warm-up bias lr 0.1, mosaic on for all epochs (close_mosaic 0), early-stopping patience 50.
# Only keys the user does not set are filled in; a resumed run keeps its checkpoint's arguments.
AYOLOM_TRAIN_DEFAULTS = dict(epochs=300, batch=12, imgsz=640, optimizer="SGD", lr0=0.01, momentum=0.937,
                             warmup_bias_lr=0.1, close_mosaic=0, patience=50)


class MultiTaskTrainer(DetectionTrainer):
    """Trains :class:`MultiTaskModel` on BDD100K-format data (``task='multitask'``).

    Arguments not given default to the published run (:data:`AYOLOM_TRAIN_DEFAULTS`) instead of
    Ultralytics' detection defaults; ``best.pt`` and early stopping follow the official fitness
    (see :class:`~lsdense.yolo.multitask.MultiTaskValidator`).
    """

    def __init__(self, cfg=None, overrides=None, _callbacks=None):
        from ultralytics.utils import DEFAULT_CFG

        overrides = dict(overrides or {})
        if not overrides.get("resume"):
            overrides = {**AYOLOM_TRAIN_DEFAULTS, **overrides}
        super().__init__(cfg or DEFAULT_CFG, overrides, _callbacks)

    def get_dataset(self):
        """Check the dataset YAML paths (clear error) before Ultralytics reads it."""
        check_data_yaml(self.args.data)
        return super().get_dataset()

    def build_dataset(self, img_path: str, mode: str = "train", batch=None):
        """Detection boxes + packed drivable/lane masks."""
        gs = max(int(unwrap_model(self.model).stride.max() if self.model else 0), 32)
        return build_multitask_dataset(self.args, img_path, batch, self.data, mode=mode,
                                       rect=mode == "val", stride=gs)

    def get_model(self, cfg=None, weights=None, verbose: bool = True):
        """An A-YOLOM :class:`MultiTaskModel` (optionally initialised from ``weights``)."""
        model = MultiTaskModel(cfg, nc=self.data["nc"], ch=self.data["channels"],
                               verbose=verbose and RANK == -1)
        model = self.set_model_names_for_load(model)
        if weights:
            model.load(weights)
        return model

    def get_validator(self):
        """The A-YOLOM validator (detection + segmentation metrics)."""
        return MultiTaskValidator(self.test_loader, save_dir=self.save_dir, args=copy(self.args),
                                  _callbacks=self.callbacks)
