"""MMDetection 3.x integration: importing this module registers lsdense's modules.

Use it from a config::

    custom_imports = dict(imports=['lsdense.mmdet'], allow_failed_imports=False)

It registers ``LSNetBackbone``, ``LOLViTBackbone``, ``LiSANetBackbone``, ``HyLiSANetBackbone``,
``LiSANetIBackbone`` and the
``LSNetFPN`` neck in ``mmdet.registry.MODELS`` and lets torch's weights-only
loader read mmengine checkpoints (see :mod:`lsdense.mm`).
"""
from lsdense.versions import require

require("mmengine", "mmdet")

from lsdense.mm.register import register_mmdet  # noqa: E402

register_mmdet()

from lsdense.mm.backbones import (HyLiSANetBackbone, LiSANetBackbone,  # noqa: E402
                                  LiSANetIBackbone, LOLViTBackbone, LSNetBackbone)
from lsdense.mm.necks import LSNetFPN  # noqa: E402

__all__ = ["LSNetBackbone", "LOLViTBackbone", "LiSANetBackbone", "HyLiSANetBackbone",
           "LiSANetIBackbone", "LSNetFPN"]
