"""Ultralytics adapter: lsdense backbones in YOLO model YAMLs, and A-YOLOM multi-task.

``import lsdense.yolo`` registers the YAML modules (``LSNetBackbone``,
``LOLViTBackbone``, ``LiSANetBackbone``, ``HyLiSANetBackbone``, ``AdaptiveConcat``,
``SegHead``, ``AGate``, ``SegHeadLinear``) with Ultralytics; see ``docs/yolo.md``.
"""
try:
    import ultralytics  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("lsdense.yolo needs Ultralytics: pip install 'lsdense[yolo]' "
                      "(ultralytics>=8.4,<8.5).") from err

from .modules import (AdaptiveConcat, AGate, HyLiSANetBackbone, LiSANetBackbone,  # noqa: E402
                      LOLViTBackbone, LSDenseBackbone, LSNetBackbone, SegHead, SegHeadLinear)
from .register import check_model_yaml, register  # noqa: E402
from .swap import swap_backbone  # noqa: E402

register()

from .multitask import AYOLOM  # noqa: E402

__all__ = ["LSDenseBackbone", "LSNetBackbone", "LOLViTBackbone", "LiSANetBackbone",
           "HyLiSANetBackbone", "AdaptiveConcat", "AGate", "SegHead", "SegHeadLinear", "register",
           "check_model_yaml", "swap_backbone", "AYOLOM"]
