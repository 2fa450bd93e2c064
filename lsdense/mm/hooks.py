"""``VOCClassNamesHook``: per-class VOC tables name the config's classes.

mmdet 3.3's ``VOCMetric`` passes ``dataset='voc'`` to ``eval_map`` whenever the dataset's
``dataset_type`` is ``'VOC2007'`` / ``'VOC2012'``, which ``VOCDataset`` sets from the
folder name (``sub_data_root``), whatever ``metainfo.classes`` says; ``print_map_summary``
then labels the rows with ``get_classes('voc')``: a VOC-layout set with classes
``('circle', 'square')`` prints 'aeroplane', 'bicycle'. The figures are right, the names
wrong. Before each validation / test, this hook clears ``dataset_type`` in the metric's
copy of the dataset meta when the classes are not VOC's 20, so ``VOCMetric`` takes the
class names from ``dataset_meta['classes']`` (its own other branch). Nothing else in the
metric depends on ``dataset_type`` (a warning about ``eval_mode``).
"""
from __future__ import annotations

from mmengine.hooks import Hook

__all__ = ["VOCClassNamesHook", "fix_voc_class_names"]


def fix_voc_class_names(evaluator) -> int:
    """Clear ``dataset_type`` of every ``VOCMetric`` of ``evaluator`` whose classes are not
    VOC's; return how many metrics changed."""
    from mmdet.datasets import VOCDataset
    from mmdet.evaluation import VOCMetric

    voc = list(VOCDataset.METAINFO["classes"])
    changed = 0
    for metric in getattr(evaluator, "metrics", []):
        meta = getattr(metric, "dataset_meta", None)
        if isinstance(metric, VOCMetric) and meta \
                and meta.get("dataset_type") in ("VOC2007", "VOC2012") \
                and list(meta.get("classes", voc)) != voc:
            metric.dataset_meta = {**meta, "dataset_type": None}
            changed += 1
    return changed


class VOCClassNamesHook(Hook):
    """Registered in mmdet's ``HOOKS`` by ``import lsdense.mmdet``; ``tools/train.py`` and
    ``tools/test.py`` add it to every mmdet run (``custom_hooks``)."""

    priority = "LOWEST"

    def before_val(self, runner) -> None:
        fix_voc_class_names(runner.val_loop.evaluator)

    def before_test(self, runner) -> None:
        fix_voc_class_names(runner.test_loop.evaluator)
