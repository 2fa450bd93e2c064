"""Ultralytics adapter: lsdense backbones in YOLO model YAMLs, and A-YOLOM multi-task.

``import lsdense.yolo`` registers the YAML modules (``LSNetBackbone``,
``LOLViTBackbone``, ``LiSANetBackbone``, ``HyLiSANetBackbone``, ``AdaptiveConcat``,
``SegHead``, ``AGate``, ``SegHeadLinear``) with Ultralytics; see ``docs/yolo.md``.
"""
from lsdense.versions import require

require("ultralytics")

from .modules import (AdaptiveConcat, AGate, HyLiSANetBackbone, LiSANetBackbone,  # noqa: E402
                      LOLViTBackbone, LSDenseBackbone, LSNetBackbone, SegHead, SegHeadLinear)
from .register import check_model_yaml, register  # noqa: E402
from .swap import swap_backbone  # noqa: E402

register()

from .multitask import AYOLOM  # noqa: E402

__all__ = ["LSDenseBackbone", "LSNetBackbone", "LOLViTBackbone", "LiSANetBackbone",
           "HyLiSANetBackbone", "AdaptiveConcat", "AGate", "SegHead", "SegHeadLinear", "register",
           "check_model_yaml", "swap_backbone", "AYOLOM"]
