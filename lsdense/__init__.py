"""lsdense: LSNet, LOLViT and LiSANet backbones for dense prediction.

``import lsdense`` registers the backbones with timm. Framework adapters live
in ``lsdense.mmdet``, ``lsdense.mmseg`` and ``lsdense.yolo`` and import their
framework only when imported themselves.
"""
from .versions import require

require("torch", "timm")  # one line naming the fix, before an AttributeError deep in an import

from . import models  # noqa: F401, E402  (registers the timm models)

__version__ = "0.1.0"
