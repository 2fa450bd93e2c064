"""Data transforms and runtime hooks of the official LSNet Semantic FPN recipe (mmseg 1.x).

* ``AlignResize``: the official ADE20K test-time resize (THU-MIG/lsnet,
  ``segmentation/align_resize.py``): keep-ratio rescale to ``scale`` as mmcv's
  ``Resize`` does, then resize (not pad) each side *up* to the next multiple
  of ``size_divisor``: a 512 x 683 image becomes 512 x 704.
* ``CudnnDeterministicHook``: the official runs' ``--deterministic`` (mmseg 0.x
  ``set_random_seed``: ``cudnn.deterministic = True``, ``cudnn.benchmark =
  False``). mmengine's ``randomness=dict(deterministic=True)`` also calls
  ``torch.use_deterministic_algorithms(True)``, under which the backward of
  bilinear / bicubic ``interpolate`` and ``NLLLoss`` on CUDA raise (torch's
  documented list): Semantic FPN could not train on a GPU with it.

Registered in ``mmseg.registry.TRANSFORMS`` / ``HOOKS`` by ``import lsdense.mmseg``
(a config's ``custom_imports``).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import mmcv
import torch
from mmcv.transforms import Resize
from mmengine.hooks import Hook

__all__ = ["AlignResize", "CudnnDeterministicHook", "align_size"]


def align_size(height: int, width: int, size_divisor: int) -> Tuple[int, int]:
    """``(height, width)`` each rounded *up* to a multiple of ``size_divisor``."""
    return (math.ceil(height / size_divisor) * size_divisor,
            math.ceil(width / size_divisor) * size_divisor)


class AlignResize(Resize):
    """mmcv ``Resize``, then resize each side up to a multiple of ``size_divisor``.

    The official LSNet ADE20K test pipeline (``AlignResize(keep_ratio=True,
    size_divisor=32)`` at ``img_scale=(2048, 512)``). The image is resized a
    second time (bilinear, as the official code) rather than padded, so the
    whole network input is image content; the prediction is resized back to
    ``ori_shape`` by the segmentor as usual.

    Args:
        size_divisor: each output side is the smallest multiple of it that is
            at least the side after the first resize. Must be a positive int.
        **kwargs: mmcv ``Resize`` arguments (``scale``, ``scale_factor``,
            ``keep_ratio``, ``interpolation``, ``backend`` ...).

    Required keys: ``img``; modified: ``img``, ``gt_seg_map`` (nearest),
    ``img_shape``, ``scale``, ``scale_factor`` (final size / input size, as the
    official code), ``keep_ratio``.

    Raises:
        ValueError: ``size_divisor`` is not a positive int; the results hold
            boxes or keypoints (a detection pipeline: stretching the image after
            the first resize would need them rescaled too, which this
            segmentation transform does not do: use mmdet's ``Resize`` + ``Pad``).
    """

    def __init__(self, size_divisor: int = 32, **kwargs) -> None:
        if not isinstance(size_divisor, int) or isinstance(size_divisor, bool) or size_divisor < 1:
            raise ValueError(f"AlignResize: size_divisor must be a positive int, got {size_divisor!r}.")
        super().__init__(**kwargs)
        self.size_divisor = size_divisor

    def transform(self, results: dict) -> dict:
        for key in ("gt_bboxes", "gt_keypoints"):
            if results.get(key) is not None:
                raise ValueError(f"AlignResize resizes images and segmentation maps only, but the "
                                 f"results hold {key!r}. Use mmdet's Resize + Pad for detection.")
        h, w = results["img"].shape[:2]
        results = super().transform(results)
        rh, rw = results["img"].shape[:2]
        ah, aw = align_size(rh, rw, self.size_divisor)
        if (ah, aw) != (rh, rw):
            results["img"] = mmcv.imresize(results["img"], (aw, ah),
                                           interpolation=self.interpolation, backend=self.backend)
            if results.get("gt_seg_map") is not None:
                results["gt_seg_map"] = mmcv.imresize(results["gt_seg_map"], (aw, ah),
                                                      interpolation="nearest", backend=self.backend)
        results["img_shape"] = (ah, aw)
        results["scale_factor"] = (aw / w, ah / h)
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", size_divisor={self.size_divisor})"


class CudnnDeterministicHook(Hook):
    """Before the run: ``cudnn.deterministic = True`` and ``cudnn.benchmark = False``.

    What the official LSNet segmentation runs' ``--deterministic`` set (seed 0 comes
    from ``randomness=dict(seed=0)``). Use it instead of mmengine's
    ``randomness.deterministic=True`` when the model has ops without a
    deterministic CUDA backward (see the module docstring).
    """

    priority = "VERY_HIGH"

    def __init__(self, deterministic: bool = True) -> None:
        self.deterministic = bool(deterministic)

    def before_run(self, runner: Optional[object] = None) -> None:
        torch.backends.cudnn.deterministic = self.deterministic
        if self.deterministic:
            torch.backends.cudnn.benchmark = False
