"""MMDetection / MMSegmentation backbones: the lsdense model classes themselves.

One class per family, registered under the same name in the ``MODELS``
registry of mmdet and of mmseg (see :mod:`lsdense.mm.register`)::

    backbone=dict(type='LSNetBackbone', arch='t', out_indices=(0, 1, 2, 3),
                  frozen_stages=-1, norm_eval=True,
                  init_cfg=dict(type='Pretrained', checkpoint='lsnet_t.pth'))

Each registered class *is* the core model (``LSNetBackbone`` subclasses
:class:`lsdense.models.lsnet.LSNet` in dense mode, plus mmengine's
:class:`~mmengine.model.BaseModule` for ``init_cfg``), so ``out_indices`` /
``frozen_stages`` / ``norm_eval`` behave as in every other framework and the
state-dict keys have the official layout: a detector saved by ``tools/train.py``
holds ``backbone.patch_embed...``, as the official LSNet dense checkpoints do,
and either file serves as backbone weights of the other without conversion.

``init_cfg=dict(type='Pretrained', checkpoint=PATH_OR_URL, prefix=None)`` is
served by :func:`lsdense.models.load_checkpoint` instead of mmengine's loader:
that one loads ``http(s)://`` files with full unpickling, silently loads nothing
from ``{'model': ...}`` files and reports keys the core's load hook resizes as
mismatched; ours reads weights-only (URLs through torch.hub's cache, like
mmengine), reports missing/unexpected keys once by name in the mmengine log and
raises when nothing matches.

The backbone arguments mmdet's and mmseg's own backbones take (ResNet, Swin, PVT,
MiT) are accepted where they mean something here, by every class alike:
``with_cp`` (activation checkpointing per block), ``norm_cfg`` (a BatchNorm kind:
``BN`` / ``SyncBN``, with ``requires_grad`` / ``eps`` / ``momentum``, built by
mmcv's ``build_norm_layer`` as their backbones do), ``pretrained`` (deprecated in
mm, turned into ``init_cfg`` as mmdet's ResNet does), ``in_channels``, and
``drop_rate`` / ``attn_drop_rate`` of 0. Any other argument (another backbone's
architecture: ``depth``, ``embed_dims``, ``style`` ...) stops the build with one
line naming it, what is accepted, and ``_delete_=True`` when a base config's
backbone was inherited (:data:`FOREIGN_ARCH_ARGS`).
"""
from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Union

import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import update_init_info

from lsdense.models import variant_by_arch
from lsdense.models.checkpoint import is_url, load_checkpoint
from lsdense.models.lisanet import LiSANet, LiSANetI
from lsdense.models.lolvit import LOLViT
from lsdense.models.lsnet import LSNet

__all__ = ["LSNetBackbone", "LOLViTBackbone", "LiSANetBackbone", "HyLiSANetBackbone",
           "LiSANetIBackbone", "BACKBONES", "apply_norm_cfg", "FOREIGN_ARCH_ARGS"]

class _ForwardTo(logging.Handler):
    """Hands the ``lsdense`` logger's records to mmengine's current logger (its file and
    console, rank filtering included)."""

    def __init__(self, target: logging.Logger) -> None:
        super().__init__(logging.INFO)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        self.target.handle(record)


@contextlib.contextmanager
def _lsdense_log_in_mmengine() -> Iterator[None]:
    """Route :func:`load_checkpoint`'s report into the run's log, once (not also to stderr)."""
    log = logging.getLogger("lsdense")
    handler = _ForwardTo(MMLogger.get_current_instance())
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


# arguments of mmdet's / mmseg's own backbones (ResNet, ResNeXt, Swin, PVT, MiT, ...) that set
# their architecture; here `arch` does, so a config that still carries them inherited a base
# config's backbone (mmengine merges dicts unless `_delete_=True`)
FOREIGN_ARCH_ARGS = frozenset({
    "depth", "num_stages", "strides", "dilations", "style", "deep_stem", "avg_down",
    "base_channels", "stem_channels", "contract_dilation", "zero_init_residual", "dcn",
    "stage_with_dcn", "plugins", "conv_cfg", "groups", "base_width", "embed_dims", "depths",
    "num_heads", "num_layers", "patch_size", "patch_sizes", "window_size", "mlp_ratio",
    "mlp_ratios", "sr_ratios", "qkv_bias", "qk_scale", "patch_norm", "use_abs_pos_embed",
    "pretrain_img_size", "convert_weights", "act_cfg", "img_size", "final_norm",
    "interpolate_mode", "with_cls_token", "output_cls_token", "num_fcs", "paddings",
    "norm_after_stage", "use_conv_ffn", "absolute_pos_embed"})
# BatchNorm kinds (mmcv's build_norm_layer types) norm_cfg may name
BN_NORM_TYPES = ("BN", "BN2d", "SyncBN")


def refuse_unknown_args(cls_name: str, accepted: Sequence[str], kwargs: dict) -> None:
    """One-line TypeError for backbone arguments this class does not take (before any build)."""
    if not kwargs:
        return
    names = sorted(kwargs)
    foreign = [n for n in names if n in FOREIGN_ARCH_ARGS]
    hint = (f" {', '.join(foreign)} set{'s' if len(foreign) == 1 else ''} another backbone's "
            f"architecture (here arch= does): if the config inherits a base config's backbone, "
            f"replace it with dict(_delete_=True, type='{cls_name}', ...).") if foreign else ""
    raise TypeError(f"{cls_name} got unexpected argument(s) {names}; it takes "
                    f"{', '.join(accepted)}.{hint}")


def check_zero_rates(cls_name: str, **rates: float) -> None:
    """``drop_rate`` / ``attn_drop_rate`` as mm's transformer backbones take them: only 0 here."""
    bad = {k: v for k, v in rates.items() if v}
    if bad:
        raise ValueError(f"{cls_name}: {', '.join(f'{k}={v}' for k, v in bad.items())} is not "
                         f"supported: these backbones have no dropout inside; use "
                         f"drop_path_rate (stochastic depth).")


def apply_norm_cfg(model: nn.Module, norm_cfg: Optional[dict]) -> int:
    """Rebuild every ``nn.BatchNorm2d`` of ``model`` from ``norm_cfg`` with mmcv's
    ``build_norm_layer`` (as mmdet's / mmseg's backbones build theirs), keeping its state,
    ``eps`` and ``momentum`` unless ``norm_cfg`` gives them; ``requires_grad`` is honoured.

    ``SyncBN`` outside a distributed run behaves as mmseg's backbones do: mmengine's
    runner reverts SyncBN layers to BatchNorm when it does not train distributed.

    Returns:
        The number of layers rebuilt.

    Raises:
        ValueError: ``norm_cfg`` names no BatchNorm kind (one line naming those accepted).
    """
    if norm_cfg is None:
        return 0
    from mmcv.cnn import build_norm_layer

    name = type(model).__name__
    kind = norm_cfg.get("type") if isinstance(norm_cfg, dict) else None
    if kind not in BN_NORM_TYPES:
        raise ValueError(f"{name}: norm_cfg={norm_cfg!r} is not supported: its norm layers are "
                         f"BatchNorm (the official weights carry their statistics) or fixed "
                         f"LayerNorms; use norm_cfg=dict(type='BN' or 'SyncBN', "
                         f"requires_grad=True|False), or leave it out.")
    count = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if type(child) is not nn.BatchNorm2d:
                continue
            cfg = {"eps": child.eps, "momentum": child.momentum, **norm_cfg}
            new = build_norm_layer(cfg, child.num_features)[1].to(child.weight.device,
                                                                 child.weight.dtype)
            new.load_state_dict(child.state_dict())
            new.train(child.training)
            setattr(parent, child_name, new)
            count += 1
    return count


class _MMBackbone:
    """mmengine's side of an lsdense backbone: ``init_cfg`` and the mm arguments.

    Mixed in before the core model class, with :class:`BaseModule` after it (the
    core's ``super().__init__()`` reaches ``BaseModule.__init__``).
    """

    family: str = ""
    init_cfg: Optional[Union[dict, List[dict]]]
    _is_init: bool

    @classmethod
    def _core_args(cls, arch: str, family: Optional[str] = None, **kwargs) -> dict:
        """The core class's arguments for ``arch``: the variant's numbers, its dense-backbone
        arguments, then ``kwargs``; ``dense=True``."""
        variant = variant_by_arch(family or cls.family, arch)
        if not issubclass(cls, variant.model_cls):
            other = [c.__name__ for c in BACKBONES if c.family == variant.family
                     and issubclass(c, variant.model_cls)]
            core = next(c for c in cls.__mro__ if c.__module__.startswith("lsdense.models"))
            raise TypeError(f"{cls.__name__} builds {core.__name__} models; arch "
                            f"{arch!r} is a {variant.model_cls.__name__}: use type="
                            f"{other[0] if other else variant.model_cls.__name__!r}.")
        return {**variant.model_args, **variant.dense_args, **kwargs, "dense": True}

    # mm arguments every class takes besides its own (see the module docstring)

    @classmethod
    def _check_mm_args(cls, kwargs: dict, drop_rate: float, attn_drop_rate: float) -> None:
        """Refuse, before building anything, arguments this class does not take."""
        import inspect

        own = [p for p in inspect.signature(cls.__init__).parameters
               if p not in ("self", "kwargs")]
        refuse_unknown_args(cls.__name__, own, kwargs)
        check_zero_rates(cls.__name__, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate)

    def _setup_mm(self, arch: str, init_cfg: Optional[Union[dict, List[dict]]],
                  with_cp: bool = False, norm_cfg: Optional[dict] = None,
                  pretrained: Optional[str] = None) -> None:
        name = type(self).__name__
        self.arch = arch
        if pretrained is not None:  # mm's deprecated spelling (mmdet ResNet: same conversion)
            if init_cfg is not None:
                raise ValueError(f"{name}: give init_cfg or pretrained, not both (pretrained "
                                 f"is deprecated: use init_cfg=dict(type='Pretrained', "
                                 f"checkpoint=...)).")
            warnings.warn(f"{name}: pretrained is deprecated, use init_cfg=dict(type="
                          f"'Pretrained', checkpoint={pretrained!r})", DeprecationWarning)
            init_cfg = dict(type="Pretrained", checkpoint=pretrained)
        self.init_cfg = copy.deepcopy(init_cfg)
        rebuilt = apply_norm_cfg(self, norm_cfg)  # type: ignore[arg-type]
        if norm_cfg is not None and not rebuilt:
            print_log(f"{name}: norm_cfg {norm_cfg} applies to no layer (this backbone has no "
                      f"BatchNorm; its LayerNorms stay)", logger="current")
        self._freeze_stages()  # type: ignore[attr-defined]  (rebuilt norms of frozen stages)
        self.with_cp = bool(with_cp)
        self.set_grad_checkpointing(self.with_cp)  # type: ignore[attr-defined]

    def init_weights(self) -> None:
        """Run mmengine's other initialisers, then load ``Pretrained`` with lsdense's loader."""
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        pretrained = [c for c in cfgs if c and c.get("type") == "Pretrained"]
        if not pretrained or self._is_init:
            BaseModule.init_weights(self)  # type: ignore[arg-type]
            return
        own, self.init_cfg = self.init_cfg, [c for c in cfgs if c and c.get("type") != "Pretrained"]
        try:
            BaseModule.init_weights(self)  # type: ignore[arg-type]
        finally:
            self.init_cfg = own
        for cfg in pretrained:
            if "checkpoint" not in cfg:
                raise ValueError(f"{type(self).__name__}: init_cfg {cfg} has no 'checkpoint'; "
                                 f"give dict(type='Pretrained', checkpoint=PATH_OR_URL).")
            self.load_pretrained(cfg["checkpoint"], prefix=cfg.get("prefix"))

    def load_pretrained(self, checkpoint: Union[str, Path],
                        prefix: Optional[str] = None) -> None:
        """Load ``checkpoint`` (a path or ``http(s)://`` URL; optionally only its ``prefix``
        keys) into this backbone.

        Raises:
            ValueError: an unsupported ``scheme://`` (only http/https and paths are
                read), a prefix no key has, or a file matching no key of the model.
            FileNotFoundError / ConnectionError: the file cannot be found or downloaded.
        """
        name = type(self).__name__
        text = str(checkpoint)
        if "://" in text and not is_url(text):
            raise ValueError(f"{name}: checkpoint {text!r} uses a scheme lsdense does not read; "
                             f"give a local path or an http(s):// URL.")
        with _lsdense_log_in_mmengine():
            load_checkpoint(self, text if is_url(text) else Path(text), prefix=prefix)  # type: ignore[arg-type]
        print_log(f"{name}: loaded {text}" + (f" (keys under {prefix!r})" if prefix else ""),
                  logger="current")
        if hasattr(self, "_params_init_info"):
            update_init_info(self, init_info=f"Loaded from {text} by lsdense.load_checkpoint")
        self._is_init = True


class LSNetBackbone(_MMBackbone, LSNet, BaseModule):
    """LSNet (CVPR 2025) backbone: archs ``'t'``, ``'s'``, ``'b'``; strides 8, 16, 32, 64.

    Args:
        arch: ``'t'``, ``'s'`` or ``'b'``.
        out_indices: levels to return, default ``(0, 1, 2, 3)``.
        frozen_stages: -1 .. 4 (0 = the stem, the stride-8 patch embedding).
        norm_eval: BatchNorm in eval mode while training (the paper's detection setting).
        drop_path_rate: stochastic depth (the official model uses none).
        ska_impl: ``'auto'`` | ``'fast'`` | ``'reference'`` SKA implementation.
        attn_bias_mode: ``'matrix'`` (official bicubic resize of the bias matrix) or ``'table'``.
        init_cfg: mmengine init config; ``type='Pretrained'`` (``checkpoint`` a path or
            URL, optional ``prefix``) loads through :func:`lsdense.models.load_checkpoint`.
        with_cp: activation checkpointing per block (``torch.utils.checkpoint``, as
            mmdet's ResNet / Swin): less memory, the same gradients.
        norm_cfg: ``dict(type='BN' | 'BN2d' | 'SyncBN', requires_grad=..., eps=...,
            momentum=...)`` rebuilds the BatchNorm layers (:func:`apply_norm_cfg`).
        pretrained: deprecated mm spelling of ``init_cfg=dict(type='Pretrained', ...)``.
        in_channels: input channels (3).
        drop_rate, attn_drop_rate: accepted as mm's transformer backbones pass them; only 0.

    Raises:
        TypeError: an argument none of these (one line; ``_delete_=True`` hint for another
            backbone's architecture arguments). ValueError: a bad ``norm_cfg`` or rate.
    """

    family = "lsnet"

    def __init__(self, arch: str = "t", out_indices: Optional[Sequence[int]] = (0, 1, 2, 3),
                 frozen_stages: int = -1, norm_eval: bool = False, drop_path_rate: float = 0.0,
                 ska_impl: str = "auto", attn_bias_mode: str = "matrix",
                 init_cfg: Optional[dict] = None, with_cp: bool = False,
                 norm_cfg: Optional[dict] = None, pretrained: Optional[str] = None,
                 in_channels: int = 3, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 **kwargs) -> None:
        self._check_mm_args(kwargs, drop_rate, attn_drop_rate)
        super().__init__(**self._core_args(
            arch, out_indices=out_indices, frozen_stages=frozen_stages, norm_eval=norm_eval,
            drop_path_rate=drop_path_rate, ska_impl=ska_impl, attn_bias_mode=attn_bias_mode,
            in_chans=in_channels))
        self._setup_mm(arch, init_cfg, with_cp, norm_cfg, pretrained)


class LOLViTBackbone(_MMBackbone, LOLViT, BaseModule):
    """LOLViT backbone: archs ``'s'``, ``'x'``; five levels at strides 2, 4, 8, 16, 32.

    Args:
        arch: ``'s'`` or ``'x'``.
        out_indices: levels to return, default ``(2, 3, 4)`` (strides 8-32, for
            RetinaNet); Mask R-CNN / Semantic FPN use ``(1, 2, 3, 4)``.
        frozen_stages: -1 .. 5 (0 = the stride-2 stem, k = up to level k).
        norm_eval: BatchNorm in eval mode while training.
        drop_path_rate: stochastic depth over the transformer layers.
        init_cfg, with_cp, norm_cfg, pretrained, in_channels, drop_rate, attn_drop_rate:
            see :class:`LSNetBackbone`.
    """

    family = "lolvit"

    def __init__(self, arch: str = "s", out_indices: Optional[Sequence[int]] = (2, 3, 4),
                 frozen_stages: int = -1, norm_eval: bool = False, drop_path_rate: float = 0.0,
                 init_cfg: Optional[dict] = None, with_cp: bool = False,
                 norm_cfg: Optional[dict] = None, pretrained: Optional[str] = None,
                 in_channels: int = 3, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 **kwargs) -> None:
        self._check_mm_args(kwargs, drop_rate, attn_drop_rate)
        super().__init__(**self._core_args(
            arch, out_indices=out_indices, frozen_stages=frozen_stages, norm_eval=norm_eval,
            drop_path_rate=drop_path_rate, in_chans=in_channels))
        self._setup_mm(arch, init_cfg, with_cp, norm_cfg, pretrained)


class _LiSAMMBackbone(_MMBackbone):
    """The constructor both LiSA mm classes share (their core classes differ)."""

    family = "lisanet"
    default_arch = "s"

    def __init__(self, arch: Optional[str] = None,
                 out_indices: Optional[Sequence[int]] = None, frozen_stages: int = -1,
                 norm_eval: bool = False, drop_path_rate: float = 0.0,
                 init_cfg: Optional[dict] = None, with_cp: bool = False,
                 norm_cfg: Optional[dict] = None, pretrained: Optional[str] = None,
                 in_channels: int = 3, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 **kwargs) -> None:
        self._check_mm_args(kwargs, drop_rate, attn_drop_rate)
        arch = arch or self.default_arch
        super().__init__(**self._core_args(
            arch, out_indices=out_indices, frozen_stages=frozen_stages, norm_eval=norm_eval,
            drop_path_rate=drop_path_rate, in_chans=in_channels))
        self._setup_mm(arch, init_cfg, with_cp, norm_cfg, pretrained)


class LiSANetBackbone(_LiSAMMBackbone, LiSANet, BaseModule):
    """LiSANet / HyLiSANet / LiSANet-I backbone.

    ``arch`` is ``'s'`` or ``'b'`` (strides 4-32). HyLiSANet (convolutional first two
    stages) is :class:`HyLiSANetBackbone` (the YOLO YAMLs' name too), the isotropic
    LiSANet-I :class:`LiSANetIBackbone`.

    Args:
        arch: ``'s'`` or ``'b'`` (default ``'s'``).
        out_indices: levels to return, default all.
        frozen_stages: -1 .. 4 (0 = the stride-4 patch embedding).
        norm_eval: BatchNorm (HyLiSANet conv blocks) in eval mode while training.
        drop_path_rate: stochastic depth (paper: 0.1 Mask R-CNN, 0.15 Semantic FPN).
        init_cfg, with_cp, norm_cfg, pretrained, in_channels, drop_rate, attn_drop_rate:
            see :class:`LSNetBackbone`.
    """


class HyLiSANetBackbone(LiSANetBackbone):
    """HyLiSANet backbone (LiSA paper): archs ``'s'``, ``'b'``; strides 4-32.

    Arguments as :class:`LiSANetBackbone`.
    """

    family = "hylisanet"


class LiSANetIBackbone(_LiSAMMBackbone, LiSANetI, BaseModule):
    """The isotropic LiSANet-I backbone: arch ``'i'``; one stride-16 level per block.

    Arguments as :class:`LiSANetBackbone` (``arch`` ``'i'``).
    """

    default_arch = "i"


# every mm backbone class, registered under its own name (register.py); the family table of
# the pre-flight (checks.lsdense_types) is read from these classes
BACKBONES = (LSNetBackbone, LOLViTBackbone, LiSANetBackbone, HyLiSANetBackbone, LiSANetIBackbone)
