"""Registration of the lsdense modules in mmdet's and mmseg's ``MODELS`` registries."""
from __future__ import annotations

__all__ = ["register_mmdet", "register_mmseg"]


def _register(registry, classes) -> None:
    for cls in classes:
        if registry.get(cls.__name__) is not cls:  # idempotent; a clash raises in register_module
            registry.register_module(module=cls)


def _backbones():
    from .backbones import BACKBONES

    return list(BACKBONES)


def _register_optim() -> None:
    """``NoWeightDecayOptimWrapperConstructor`` in mmengine's root registry, which mmdet's and
    mmseg's ``OPTIM_WRAPPER_CONSTRUCTORS`` search as their parent."""
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

    from .optim import NoWeightDecayOptimWrapperConstructor

    _register(OPTIM_WRAPPER_CONSTRUCTORS, [NoWeightDecayOptimWrapperConstructor])


def register_mmdet() -> None:
    """Register the backbones (``backbones.BACKBONES``) and ``LSNetFPN`` in ``mmdet.registry.MODELS``,
    ``VOCClassNamesHook`` in ``HOOKS`` and
    ``NoWeightDecayOptimWrapperConstructor`` in mmengine's ``OPTIM_WRAPPER_CONSTRUCTORS``."""
    from mmdet.registry import HOOKS, MODELS

    from .hooks import VOCClassNamesHook
    from .necks import LSNetFPN
    from .safe_load import allow_mmengine_checkpoints

    _register(MODELS, [*_backbones(), LSNetFPN])
    _register(HOOKS, [VOCClassNamesHook])
    _register_optim()
    allow_mmengine_checkpoints()


def register_mmseg() -> None:
    """Register the backbones (``backbones.BACKBONES``) in ``mmseg.registry.MODELS``, ``AlignResize`` in
    ``TRANSFORMS``, ``CudnnDeterministicHook`` in ``HOOKS`` and
    ``NoWeightDecayOptimWrapperConstructor`` in mmengine's ``OPTIM_WRAPPER_CONSTRUCTORS``."""
    from mmseg.registry import HOOKS, MODELS, TRANSFORMS

    from .safe_load import allow_mmengine_checkpoints
    from .transforms import AlignResize, CudnnDeterministicHook

    _register(MODELS, _backbones())
    _register(TRANSFORMS, [AlignResize])
    _register(HOOKS, [CudnnDeterministicHook])
    _register_optim()
    allow_mmengine_checkpoints()
