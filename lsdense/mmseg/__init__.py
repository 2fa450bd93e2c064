"""MMSegmentation 1.x integration: importing this module registers lsdense's backbones.

Use it from a config::

    custom_imports = dict(imports=['lsdense.mmseg'], allow_failed_imports=False)

It registers ``LSNetBackbone``, ``LOLViTBackbone``, ``LiSANetBackbone`` and ``HyLiSANetBackbone`` in
``mmseg.registry.MODELS`` and lets torch's weights-only loader read mmengine
checkpoints (see :mod:`lsdense.mm`).
"""
from lsdense.mm.register import register_mmseg

register_mmseg()

from lsdense.mm.backbones import (HyLiSANetBackbone, LiSANetBackbone, LOLViTBackbone,  # noqa: E402
                                  LSNetBackbone)

__all__ = ["LSNetBackbone", "LOLViTBackbone", "LiSANetBackbone", "HyLiSANetBackbone"]
