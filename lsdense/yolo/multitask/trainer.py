"""A-YOLOM trainer: Ultralytics' ``DetectionTrainer`` with the BDD100K multi-task dataset and model."""
from __future__ import annotations

from copy import copy

from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import RANK
from ultralytics.utils.torch_utils import unwrap_model

from ..checks import check_data_yaml
from .data import MultiTaskDataset
from .model import MultiTaskModel

__all__ = ["MultiTaskTrainer", "build_multitask_dataset"]


def build_multitask_dataset(cfg, img_path: str, batch: int, data: dict, mode: str = "train",
                            rect: bool = False, stride: int = 32) -> MultiTaskDataset:
    """The BDD100K multi-task dataset with the arguments Ultralytics' ``build_yolo_dataset`` uses."""
    return MultiTaskDataset(
        img_path=img_path, imgsz=cfg.imgsz, batch_size=batch, augment=mode == "train", hyp=cfg,
        rect=cfg.rect or rect, cache=cfg.cache or None, single_cls=cfg.single_cls or False,
        stride=stride, pad=0.0 if mode == "train" else 0.5, prefix=f"{mode}: ",
        classes=cfg.classes, data=data, fraction=cfg.fraction if mode == "train" else 1.0)


class MultiTaskTrainer(DetectionTrainer):
    """Trains :class:`MultiTaskModel` on BDD100K-format data (``task='multitask'``)."""

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
        from .validator import MultiTaskValidator

        return MultiTaskValidator(self.test_loader, save_dir=self.save_dir, args=copy(self.args),
                                  _callbacks=self.callbacks)
