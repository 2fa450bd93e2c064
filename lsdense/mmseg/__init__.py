"""MMSegmentation 1.x integration: importing this module registers lsdense's backbones.

Use it from a config::

    custom_imports = dict(imports=['lsdense.mmseg'], allow_failed_imports=False)

It registers ``LSNetBackbone``, ``LOLViTBackbone``, ``LiSANetBackbone``, ``HyLiSANetBackbone`` and
``LiSANetIBackbone`` in
``mmseg.registry.MODELS`` and lets torch's weights-only loader read mmengine
checkpoints (see :mod:`lsdense.mm`).
"""
from lsdense.versions import require

require("mmengine", "mmsegmentation")

from lsdense.mm.register import register_mmseg  # noqa: E402

register_mmseg()

from lsdense.mm.backbones import (HyLiSANetBackbone, LiSANetBackbone,  # noqa: E402
                                  LiSANetIBackbone, LOLViTBackbone, LSNetBackbone)

__all__ = ["LSNetBackbone", "LOLViTBackbone", "LiSANetBackbone", "HyLiSANetBackbone",
           "LiSANetIBackbone"]
