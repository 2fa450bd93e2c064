"""Registration of the lsdense modules in mmdet's and mmseg's ``MODELS`` registries."""
from __future__ import annotations

__all__ = ["register_mmdet", "register_mmseg"]


def _register(registry, classes) -> None:
    for cls in classes:
        if registry.get(cls.__name__) is not cls:  # idempotent; a clash raises in register_module
            registry.register_module(module=cls)


def _backbones():
    from .backbones import LiSANetBackbone, LOLViTBackbone, LSNetBackbone

    return [LSNetBackbone, LOLViTBackbone, LiSANetBackbone]


def register_mmdet() -> None:
    """Register the three backbones and ``LSNetFPN`` in ``mmdet.registry.MODELS``."""
    from mmdet.registry import MODELS

    from .necks import LSNetFPN
    from .safe_load import allow_mmengine_checkpoints

    _register(MODELS, [*_backbones(), LSNetFPN])
    allow_mmengine_checkpoints()


def register_mmseg() -> None:
    """Register the three backbones in ``mmseg.registry.MODELS``, ``AlignResize`` in
    ``TRANSFORMS`` and ``CudnnDeterministicHook`` in ``HOOKS``."""
    from mmseg.registry import HOOKS, MODELS, TRANSFORMS

    from .safe_load import allow_mmengine_checkpoints
    from .transforms import AlignResize, CudnnDeterministicHook

    _register(MODELS, _backbones())
    _register(TRANSFORMS, [AlignResize])
    _register(HOOKS, [CudnnDeterministicHook])
    allow_mmengine_checkpoints()
