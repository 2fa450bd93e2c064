"""Building blocks and the backbone contract shared by every lsdense family.

Everything here depends on torch and timm only. Each family file (``lsnet.py``,
``lolvit.py``, ``lisanet.py``) subclasses :class:`DenseBackboneMixin` so that
``out_indices`` / ``frozen_stages`` / ``norm_eval`` / ``feature_info`` / input
checks / ``fuse()`` behave the same in every framework adapter.
"""

import contextlib
import functools
import inspect
from collections import OrderedDict
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar

import torch
import torch.nn as nn
import torch.fx
import torch.nn.functional as F
from timm.layers import calculate_drop_path_rates, get_device_dtype
from timm.models import checkpoint, checkpoint_seq
from timm.models._features import feature_take_indices
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .forms import set_form

__all__ = [
    "Conv2d_BN",
    "DenseBackboneMixin",
    "EvalCache",
    "factory_kwargs",
    "fuse_modules",
    "resolve_out_indices",
]

T = TypeVar("T")
# timm's pooling types that keep the width (timm.layers.SelectAdaptivePool2d; 'fast*' are
# its flattening variants, the same values), or '' (none: the head sees the map);
# 'catavgmax' (twice the width) is not offered
GLOBAL_POOLS = ("avg", "max", "avgmax", "fast", "fastavg", "fastmax", "fastavgmax", "")


def factory_kwargs(init):
    """Decorator: a model ``__init__`` takes timm's factory arguments ``device=`` / ``dtype=``.

    ``timm.create_model(name, device=..., dtype=...)`` passes them to the model
    class. The body runs under ``with torch.device(device)`` so parameters and
    buffers are created there (``'meta'`` allocates nothing, ``'cuda'`` skips the
    CPU copy); floating-point tensors are then cast to ``dtype``.
    """
    @functools.wraps(init)
    def wrapper(self, *args, device=None, dtype=None, **kwargs):
        with torch.device(device) if device is not None else contextlib.nullcontext():
            init(self, *args, **kwargs)
        if dtype is not None:
            self.to(dtype=dtype)
    return wrapper


def check_global_pool(name: str, global_pool: str) -> str:
    """Validate a ``global_pool`` argument (one of ``GLOBAL_POOLS``) with a readable error."""
    if global_pool not in GLOBAL_POOLS:
        raise ValueError(f"{name}: global_pool={global_pool!r} is not supported; use 'avg' "
                         f"(global average pooling), 'max', 'avgmax' (timm's, also with the "
                         f"'fast' prefix) or '' (no pooling: the head gets the (B, C, H, W) map, "
                         f"e.g. with num_classes=0).")
    return global_pool


class Conv2d_BN(nn.Sequential):
    """Conv2d without bias followed by BatchNorm2d (``c`` and ``bn``).

    The attribute names match the official LSNet/EfficientViT checkpoints.
    ``fuse()`` folds the BatchNorm into one biased Conv2d for inference.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1, bn_weight_init: float = 1.0):
        super().__init__()
        self.add_module("c", nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, dilation,
                                       groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(out_chs))
        nn.init.constant_(self.bn.weight, bn_weight_init)
        nn.init.constant_(self.bn.bias, 0)

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        """One biased Conv2d equal to this pair in eval mode (``fuse_conv_bn_eval``)."""
        return fuse_conv_bn_eval(self.c.eval(), self.bn.eval())


def fuse_modules(module: nn.Module) -> nn.Module:
    """Recursively replace every child that has a ``fuse()`` method by its result.

    A child's ``fuse()`` returns the module to put in its place (it may return
    itself after an in-place reparameterisation). Call on an eval-mode model.
    """
    for name, child in list(module.named_children()):
        fuse = getattr(child, "fuse", None)
        if callable(fuse) and not isinstance(child, DenseBackboneMixin):
            setattr(module, name, fuse())
        else:
            fuse_modules(child)
    return module


def resolve_out_indices(out_indices: Optional[Iterable[int]], num_outputs: int,
                        name: str) -> Tuple[int, ...]:
    """Validate ``out_indices`` (negative values count from the end)."""
    if out_indices is None:
        return tuple(range(num_outputs))
    if isinstance(out_indices, int):
        out_indices = (out_indices,)
    resolved = []
    for i in out_indices:
        if not isinstance(i, int) or not -num_outputs <= i < num_outputs:
            raise ValueError(
                f"{name}: out_indices={tuple(out_indices)} is out of range; this backbone has "
                f"{num_outputs} outputs, so valid indices are 0..{num_outputs - 1} "
                f"(or -{num_outputs}..-1).")
        resolved.append(i % num_outputs)
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"{name}: out_indices={tuple(out_indices)} has duplicates.")
    return tuple(sorted(resolved))


class DenseBackboneMixin:
    """The backbone contract every lsdense model implements.

    A subclass calls :meth:`_setup_dense` at the end of ``__init__`` and
    implements ``_freeze_units()`` (stem first, then each stage: one per output
    level, except the isotropic LiSANet-I whose one stage holds a level per block).
    That one list drives freezing, the forward over levels (:meth:`_forward_levels`;
    :meth:`_level_units` / :meth:`_level_output` are the hooks LiSANet-I overrides)
    and activation checkpointing. The timm classifier API (``get_classifier`` /
    ``reset_classifier`` / ``forward_head``) is shared too; a family supplies its
    classifier type in :meth:`_new_classifier`. It must also set
    ``self.feature_info`` (timm style list of dicts with ``num_chs``,
    ``reduction`` and ``module``: the level's unit, by attribute path) before
    calling ``_setup_dense``.

    Contract (mmdet/mmpretrain conventions):
        * ``out_indices``: which levels ``forward`` returns (tuple, always). A dense
          backbone holds no level after ``max(out_indices)`` (see
          :meth:`prune_intermediate_layers`), so every parameter gets a gradient
          (PyTorch DDP needs that without ``find_unused_parameters``).
        * ``frozen_stages``: -1 freezes nothing, 0 the stem, k the stem and the
          first k stages; re-applied after every ``.train()``.
        * ``norm_eval``: BatchNorm layers stay in eval mode during training.
    """

    # Python-side descriptions, not part of a TorchScript model
    __jit_unused_properties__ = ["out_channels", "out_strides", "min_input_size"]
    # defaults; no class-level annotations (TorchScript would read them as attribute types)
    dense = False
    in_chans = 3
    out_indices = ()
    frozen_stages = -1
    norm_eval = False
    num_levels = 0  # levels the network still computes (fewer after pruning)
    grad_checkpointing = False

    def _setup_dense(self, out_indices: Optional[Sequence[int]], frozen_stages: int,
                     norm_eval: bool) -> None:
        name = type(self).__name__
        self.num_levels = len(self.feature_info)
        self.grad_checkpointing = False
        self.out_indices = resolve_out_indices(out_indices, len(self.feature_info), name)
        units = self._freeze_units()
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages < len(units):
            raise ValueError(
                f"{name}: frozen_stages={frozen_stages!r} is out of range; use -1 (nothing "
                f"frozen), 0 (stem) .. {len(units) - 1} (stem and every stage).")
        self.frozen_stages = frozen_stages
        self.norm_eval = bool(norm_eval)
        if self.dense and max(self.out_indices) < self.num_levels - 1:
            self._prune_levels(max(self.out_indices))
        self._freeze_stages()

    # --- overridden by each family ------------------------------------------------
    def _freeze_units(self) -> List[nn.Module]:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _level_info(**args) -> List[dict]:  # pragma: no cover - abstract
        """``feature_info`` from the constructor's arguments (all of them, defaults filled)."""
        raise NotImplementedError

    @classmethod
    def default_out_indices(cls, num_levels: int) -> Tuple[int, ...]:
        """Levels a dense backbone returns when ``out_indices`` is None: all of them."""
        return tuple(range(num_levels))

    @classmethod
    def feature_info_for(cls, **kwargs) -> List[dict]:
        """The ``feature_info`` a model built with ``kwargs`` has, without building it.

        The class's defaults fill the arguments not given (the registry stores each
        variant's answer; ``__init__`` uses the same :meth:`_level_info`).
        """
        bound = inspect.signature(cls.__init__).bind_partial(None, **kwargs)
        bound.apply_defaults()
        args = {k: v for k, v in list(bound.arguments.items())[1:]}
        args.update(args.pop("kwargs", {}))
        return cls._level_info(**args)

    def _level_units(self) -> Tuple[nn.Module, List[nn.Module]]:
        """The stem and the units whose outputs are the levels (default: ``_freeze_units()``)."""
        stem, *levels = self._freeze_units()
        return stem, levels

    def _level_output(self, x: torch.Tensor) -> torch.Tensor:
        """A level's map from its unit's output (identity; LiSANet-I applies its final norm)."""
        return x

    def _forward_levels(self, x: torch.Tensor) -> List[torch.Tensor]:
        """All level maps, in order: the stem, then each level unit (checkpointed when
        ``set_grad_checkpointing``, see :meth:`_checkpointed`). The unit list is Python,
        which TorchScript cannot iterate; a scripted model runs
        :meth:`_forward_levels_scripted` instead."""
        if torch.jit.is_scripting():
            return self._forward_levels_scripted(x)
        else:
            stem, levels = self._level_units()
            x = stem(x)
            outs = []
            for unit in levels:
                x = self._checkpointed(unit, x) if self.grad_checkpointing else unit(x)
                outs.append(self._level_output(x))
            return outs

    @staticmethod
    def _checkpointed(unit: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``unit(x)`` recomputed in backward block by block, as mmdet's ``with_cp``
        checkpoints each block: an ``nn.Sequential`` unit through timm's ``checkpoint_seq``, a
        unit with ``forward_checkpointed`` (a LiSANet stage) through it, any other unit (a
        LiSANet-I block) as a whole; an empty unit passes ``x`` on."""
        if isinstance(unit, nn.Sequential):
            return checkpoint_seq(unit, x) if len(unit) else x
        per_block = getattr(unit, "forward_checkpointed", None)
        return per_block(x) if per_block is not None else checkpoint(unit, x)

    def _forward_levels_scripted(self, x: torch.Tensor) -> List[torch.Tensor]:
        """:meth:`_forward_levels` in TorchScript's terms, for ``stem`` + ``stages`` networks
        (LSNet, whose stages are named attributes, and LiSANet-I override it)."""
        x = self.stem(x)  # type: ignore[attr-defined]
        outs: List[torch.Tensor] = []
        for stage in self.stages:  # type: ignore[attr-defined]
            x = stage(x)
            outs.append(x)
        return outs

    # --- shared behaviour ---------------------------------------------------------
    @property
    def out_channels(self) -> List[int]:
        """Channels of the maps ``forward`` returns (for necks)."""
        return [self.feature_info[i]["num_chs"] for i in self.out_indices]

    @property
    def out_strides(self) -> List[int]:
        """Strides of the maps ``forward`` returns."""
        return [self.feature_info[i]["reduction"] for i in self.out_indices]

    @property
    def min_input_size(self) -> int:
        """Smallest spatial size the network accepts: its largest stride."""
        return max(f["reduction"] for f in self.feature_info)

    def _freeze_stages(self) -> None:
        for unit in self._freeze_units()[: self.frozen_stages + 1]:
            unit.eval()
            for p in unit.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)  # type: ignore[misc]
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():  # type: ignore[attr-defined]
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear TypeError/ValueError for inputs the network cannot take.

        Skipped for symbolic inputs (``torch.fx`` proxies): a traced graph keeps
        the network's operations only, as timm's models trace.
        """
        if isinstance(x, torch.fx.Proxy):
            return
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} expects a torch.Tensor of shape (B, C, H, W), "
                            f"got {type(x).__name__}.")
        if x.dim() != 4:
            raise ValueError(f"{name} expects a 4-D tensor (B, C, H, W); got {x.dim()}-D "
                             f"shape {tuple(x.shape)}. Add a batch dimension with "
                             f"x.unsqueeze(0) for a single image.")
        if x.shape[1] != self.in_chans:
            raise ValueError(f"{name} was built for in_chans={self.in_chans} but the input "
                             f"has {x.shape[1]} channels (shape {tuple(x.shape)}). Build it with "
                             f"in_chans={x.shape[1]} or convert the input.")
        if not x.is_floating_point():
            raise TypeError(f"{name} expects a floating-point tensor, got {x.dtype}; "
                            f"use x.float().")
        m = self.min_input_size
        if x.shape[-2] < m or x.shape[-1] < m:
            raise ValueError(f"{name}: input {tuple(x.shape[-2:])} is too small; its total "
                             f"stride is {m}, so height and width must be at least {m}.")

    def forward(self, x: torch.Tensor):
        """Dense mode: tuple of maps (``out_indices``); classification mode: logits.

        Raises:
            RuntimeError: a dense backbone run under ``torch.jit.script`` (a scripted
                ``forward`` returns one tensor; use ``torch.jit.trace`` or ``torch.export``).
        """
        if self.dense:
            if torch.jit.is_scripting():
                raise RuntimeError("A dense lsdense backbone returns a tuple of maps, which its "
                                   "scripted forward cannot; export it with torch.jit.trace or "
                                   "torch.export, or script the timm classification model.")
            else:
                return self.forward_dense(x)
        if not torch.jit.is_scripting():
            self.check_input(x)
        return self.forward_head(self.forward_features(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (before pooling), as timm models define it."""
        return self._forward_levels(x)[-1]

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each level's activations in backward instead of storing them (timm API)."""
        self.grad_checkpointing = bool(enable)

    def _take_indices(self, indices) -> Tuple[List[int], int]:
        take, max_index = feature_take_indices(len(self.feature_info), indices)
        if max_index >= self.num_levels:
            raise ValueError(
                f"{type(self).__name__}: level {max_index} was pruned; this network computes "
                f"levels 0..{self.num_levels - 1} only (prune_intermediate_layers / out_indices).")
        return take, max_index

    def forward_intermediates(self, x: torch.Tensor, indices=None, norm: bool = False,
                              stop_early: bool = False, output_fmt: str = "NCHW",
                              intermediates_only: bool = False):
        """timm's feature API (used by ``features_only=True``).

        Args:
            x: ``(B, C, H, W)`` images.
            indices: levels to return (int: the last n; ``None``: all).
            norm: unused; every level of these networks already ends in its own norm.
            stop_early: stop after the last level taken (the final map is then that level).
            output_fmt: only ``'NCHW'``.
            intermediates_only: return only the list of maps.

        Returns:
            ``[maps]`` or ``(final map, [maps])``.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"{type(self).__name__} only produces NCHW feature maps.")
        take, max_index = self._take_indices(indices)
        self.check_input(x)
        levels = self._forward_levels(x)
        inter = [levels[i] for i in take]
        if intermediates_only:
            return inter
        return (levels[max_index] if stop_early else levels[-1]), inter

    def prune_intermediate_layers(self, indices=1, prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        """timm's feature API: drop every level after the last one taken (and the head).

        As timm's own models do: the level units after ``max(indices)`` are removed
        (their parameters leave the state dict), ``num_features`` / ``head_hidden_size``
        become the width of the last kept level, and the classifier and pooling are
        removed when ``prune_head`` or when levels were dropped (the head no longer
        fits). ``prune_norm`` has nothing to drop: each level ends in its own norm.

        Returns:
            The absolute level indices taken.
        """
        take, max_index = self._take_indices(indices)
        pruned = max_index < self.num_levels - 1
        if pruned:
            self._prune_levels(max_index)
        if prune_head or pruned:
            self.reset_classifier(0, "")
        return take

    def _prune_levels(self, last: int) -> None:
        """Remove the level units after level ``last`` (found by ``feature_info[i]['module']``).

        A unit at the end of an ``nn.Sequential`` is deleted (timm's truncation); a
        unit held as a named attribute (LSNet's ``blocks4``) becomes an empty
        ``nn.Sequential``, which passes its input through (as timm's ResNet does).
        """
        for i in reversed(range(last + 1, self.num_levels)):
            parent_name, _, child = self.feature_info[i]["module"].rpartition(".")
            parent = self.get_submodule(parent_name)  # type: ignore[attr-defined]
            if isinstance(parent, nn.Sequential) and child == str(len(parent) - 1):
                del parent[-1]
            else:
                setattr(parent, child, nn.Sequential())
        self.num_levels = last + 1
        self.num_features = self.head_hidden_size = self.feature_info[last]["num_chs"]
        if self.frozen_stages > last + 1:
            self.frozen_stages = last + 1

    # --- checkpoints --------------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Resolution-dependent tensors and head folding at load time (plain
        ``load_state_dict``, mmengine's loader; not Ultralytics' ``model.load``, which drops
        tensors of another shape before loading), as mmpretrain's
        ViT resizes ``pos_embed``: :meth:`adapt_state_dict` on this backbone's keys, then
        ``nn.Module``'s own loading. An override rather than a registered pre-hook, so a
        pickled model (an Ultralytics ``.pt``) holds no hook object that ``weights_only``
        loading would refuse (``torch.nn.modules.module._WrappedHook``)."""
        _adapt_on_load(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)  # type: ignore[misc]

    def adapt_state_dict(self, state_dict: Dict[str, torch.Tensor], own: Dict[str, torch.Tensor]
                         ) -> Tuple[Dict[str, torch.Tensor], List[str], List[str]]:
        """Fit a state dict of this family to this model (family hook; default: as is).

        Resizes resolution-dependent tensors to ``own``'s shapes, folds heads and drops
        buffers the model does not keep. Runs at every ``load_state_dict``
        and in :meth:`checkpoint_filter`; it must be idempotent.

        Returns:
            ``(state_dict, dropped_keys, resized_keys)``.
        """
        return dict(state_dict), [], []

    def checkpoint_filter(self, state_dict: Dict[str, torch.Tensor], own: Dict[str, torch.Tensor]
                          ) -> Tuple[Dict[str, torch.Tensor], List[str], List[str]]:
        """:meth:`adapt_state_dict`, then drop classifier keys this model has no slot for
        (dense mode, ``num_classes=0`` or another class count), as timm's pretrained loader
        does. Used by ``load_checkpoint`` and timm's ``pretrained_filter_fn``.

        Returns:
            ``(state_dict, dropped_keys, resized_keys)``.
        """
        sd, dropped, resized = self.adapt_state_dict(state_dict, own)
        heads = [k for k, v in sd.items() if k.startswith(("head.", "head_dist."))
                 and (k not in own or own[k].shape != v.shape)]
        return {k: v for k, v in sd.items() if k not in heads}, dropped + heads, resized

    def forward_dense(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Multi-scale maps selected by ``out_indices`` (a tuple, as mm necks expect)."""
        self.check_input(x)
        levels = self._forward_levels(x)
        return tuple(levels[i] for i in self.out_indices)

    # --- classifier (timm API) ----------------------------------------------------
    def _new_classifier(self, num_classes: int, device=None, dtype=None) -> nn.Module:
        """A classifier for ``num_classes > 0`` (family hook; default timm's Linear)."""
        width = self.num_features  # type: ignore[attr-defined]
        return nn.Linear(width, num_classes, device=device, dtype=dtype)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head  # type: ignore[attr-defined]

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """New classifier on the model's device, dtype and mode (``num_classes=0``: none).

        ``global_pool``: ``'avg'`` or ``''`` (keep the map); ``None`` keeps the current one.

        Raises:
            ValueError: an unsupported ``global_pool``.
        """
        if global_pool is not None:
            self.global_pool = check_global_pool(type(self).__name__, global_pool)
        self.num_classes = num_classes
        self.head = self._make_classifier(num_classes)

    def _make_classifier(self, num_classes: int) -> nn.Module:
        """:meth:`_new_classifier` on the model's device and dtype, in its mode (or Identity)."""
        if num_classes <= 0:
            return nn.Identity()
        head = self._new_classifier(num_classes, **get_device_dtype(self))
        return head.train(self.training)  # type: ignore[attr-defined]

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        """``global_pool`` over the map, flattened to ``(B, C)`` (timm's
        ``SelectAdaptivePool2d`` types: average, max, or their mean), or ``''``: the map."""
        pool = self.global_pool  # type: ignore[attr-defined]
        if pool == "":
            return x
        if pool.endswith("avgmax"):
            return 0.5 * (x.mean((2, 3)) + x.amax((2, 3)))
        if pool.endswith("max"):
            return x.amax((2, 3))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pooling, dropout (``head_drop``), classifier (``pre_logits``: stop before it)."""
        x = self.head_drop(self._pool(x))  # type: ignore[attr-defined]
        return x if pre_logits else self.head(x)  # type: ignore[attr-defined]

    @torch.no_grad()
    def fuse(self):
        """Fold Conv-BN pairs and reparameterise branches for inference (in place), and put
        the custom operators in their ``'fast'`` form (eager inference; see
        :mod:`lsdense.models.forms`, and :func:`~lsdense.models.forms.prepare_export` for
        exporters).

        Returns ``self`` in eval mode; outputs are preserved up to float rounding. On a
        model fused already it only sets eval mode (its forms stay as they are: Ultralytics'
        exporter fuses the model :func:`~lsdense.models.forms.prepare_export` prepared).
        """
        self.eval()  # type: ignore[attr-defined]
        if getattr(self, "fused", False):
            return self
        fuse_modules(self)  # type: ignore[arg-type]
        self.fused = True  # load_checkpoint refuses a fused model (its layout changed)
        return set_form(self, "fast")  # type: ignore[arg-type]


class EvalCache:
    """Tensors derived from parameters (LSNet's attention bias, LiSA's kernel spectra),
    computed once per key in eval mode and reused while the parameters are unchanged.

    One invalidation scheme for every such cache: it keeps a copy of its source
    parameters' values and reuses its entries only while the parameters still equal
    that copy (``torch.equal``) on the same storage, device and dtype. So every way of
    changing weights makes it stale: an optimiser step, ``load_state_dict``, a replaced
    tensor (``assign=True``, ``.to()``), and writes through ``p.data`` (an EMA or
    mean-teacher update ``p.data.mul_(d).add_(...)``), which bump no version counter
    (``.data`` shares the storage, not the autograd version). The comparison touches
    the few source tensors only (measured in docs/timm.md: within timing noise of a
    forward). The owning module clears it in ``train()``. Nothing is cached while the
    module trains or a gradient is needed (the result must stay in the autograd
    graph), nor in ``torch.fx`` / TorchScript graphs (callers compute directly there).
    Inference-mode tensors are kept apart from others (they must not reach a graph
    built outside inference mode). ``torch.compile`` graphs compute instead. At most
    ``maxsize`` keys are kept (least recently used dropped first).
    """

    def __init__(self, maxsize: int = 4):
        if maxsize < 1:
            raise ValueError(f"EvalCache: maxsize must be >= 1, got {maxsize}.")
        self.maxsize = maxsize
        self._entries: "OrderedDict[tuple, object]" = OrderedDict()
        self._sources: Tuple[tuple, Tuple[torch.Tensor, ...]] = ((), ())

    def __len__(self) -> int:
        return len(self._entries)

    # Pickled and deep-copied empty: entries are derived values (a saved model, an
    # Ultralytics checkpoint or its EMA copy would otherwise carry them: +19 MB for a
    # LiSANet-S after two input sizes); weights_only loading needs the class allow-listed
    # (lsdense.yolo does it for Ultralytics checkpoints).
    def __getstate__(self) -> dict:
        return {"maxsize": self.maxsize}

    def __setstate__(self, state: dict) -> None:
        self.maxsize = state["maxsize"]
        self._entries = OrderedDict()
        self._sources = ((), ())

    def clear(self) -> None:
        self._entries.clear()
        self._sources = ((), ())

    @staticmethod
    def active(module: nn.Module, params: Sequence[torch.Tensor]) -> bool:
        """Whether a value of ``params`` may be cached now: eval mode, no gradient needed,
        not under ``torch.compile`` (the compiled graph computes it; the cache's Python
        bookkeeping would break the graph), ``torch.jit.trace`` or ONNX export."""
        if torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return False  # a traced graph computes it (a cached value would be a constant
            # baked in for one input size, wrong at any other size of a dynamic-axes export)
        needs_grad = torch.is_grad_enabled() and any(p.requires_grad for p in params)
        return not module.training and not needs_grad

    def _check_sources(self, params: Sequence[torch.Tensor]) -> None:
        """Drop every entry unless ``params`` equal the copy the entries were computed from."""
        stamp = tuple((p.data_ptr(), p.device, p.dtype, p.shape) for p in params)
        old_stamp, values = self._sources
        if stamp == old_stamp and all(torch.equal(v, p) for v, p in zip(values, params)):
            return
        self._entries.clear()
        with torch.inference_mode(False):  # a plain copy, comparable in and out of inference
            self._sources = (stamp, tuple(p.detach().clone() for p in params))

    def get(self, key: tuple, params: Sequence[torch.Tensor], compute: Callable[..., T],
            *args) -> T:
        """The cached value for ``key`` if ``params`` are unchanged since, else
        ``compute(*args)`` (stored). Call only when :meth:`active`. (A function and its
        arguments, not a lambda: TorchScript parses the eager branch that calls this.)"""
        self._check_sources(params)
        key = (key, torch.is_inference_mode_enabled())
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]  # type: ignore[return-value]
        value = compute(*args)
        self._entries[key] = value
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return value


def _adapt_on_load(module, state_dict, prefix) -> None:
    """At every ``load_state_dict`` of an lsdense backbone: its ``adapt_state_dict`` on the
    keys under ``prefix``, in place (what it drops is neither loaded nor unexpected)."""
    keys = [k for k in state_dict if k.startswith(prefix)]
    if not keys:
        return
    local = {k[len(prefix):]: state_dict[k] for k in keys}
    adapted, _, _ = module.adapt_state_dict(local, module.state_dict())
    for k in keys:
        del state_dict[k]
    state_dict.update({prefix + k: v for k, v in adapted.items()})


def drop_path_rates(depths: Sequence[int], drop_path_rate: float) -> List[List[float]]:
    """Stochastic-depth rate per block, linearly increasing over all blocks, split per stage.

    ``timm.layers.calculate_drop_path_rates`` computes the schedule (on the CPU, so
    building under ``with torch.device('meta')`` works); its ``stagewise`` mode
    gives one rate per stage, so the per-block list is split here.
    """
    rates = calculate_drop_path_rates(drop_path_rate, sum(depths)) if sum(depths) else []
    out, i = [], 0
    for d in depths:
        out.append(rates[i:i + d])
        i += d
    return out


def resize_hw(x: torch.Tensor, size: Tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    """Resize the last two dims of any tensor (adds/removes the batch dims F needs)."""
    h, w = size
    y = F.interpolate(x.reshape(1, -1, x.shape[-2], x.shape[-1]), size=(h, w), mode=mode,
                      align_corners=False)
    return y.reshape(list(x.shape[:-2]) + [h, w])


def float_count(t: torch.Tensor) -> torch.Tensor:
    """``t.numel()`` as a 0-d float tensor of ``t``'s dtype. In a traced graph it stays a
    function of the input size, and export forms divide by it instead of by a traced
    integer size (CoreML's converter takes no integer reciprocal)."""
    return torch.ones_like(t).sum()


def bicubic_matrix(src: torch.Tensor, n_in: int, wrap: bool = False) -> torch.Tensor:
    """``(len(src), n_in)`` matrix ``A`` with ``A @ x`` the bicubic samples of a length-``n_in``
    signal ``x`` at the (fractional) source positions ``src``.

    PyTorch's bicubic convolution kernel (``a = -0.75``). Out-of-range taps are clamped to
    the border (``F.interpolate`` and ``grid_sample`` with ``padding_mode='border'``) or, with
    ``wrap``, read circularly. Plain float ops (no interpolation op): a separable resize
    written as two matmuls, which every export runtime takes (CoreML has no bicubic resize
    or grid sample).
    """
    a = -0.75
    base = torch.floor(src)
    t = src - base
    # taps at offsets -1, 0, 1, 2: |x| in (1, 2) for the outer ones, <= 1 for the inner ones
    weights = [((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
               ((a + 2) * t - (a + 3)) * t * t + 1,
               ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1,
               ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a]
    cols = torch.arange(n_in, device=src.device).to(src.dtype)
    n = float_count(cols)
    out = torch.zeros_like(src)[:, None] * cols[None, :]
    for k in range(4):
        idx = base + float(k - 1)
        if wrap:
            idx = torch.remainder(idx, n)
        else:
            idx = torch.minimum(idx.clamp(min=0.0), n - 1)
        out = out + weights[k][:, None] * (idx[:, None] == cols[None, :]).to(src.dtype)
    return out


def interpolation_positions(n_out: int, n_in: int, like: torch.Tensor) -> torch.Tensor:
    """Source positions of ``F.interpolate(..., align_corners=False)`` resizing ``n_in``
    samples to ``n_out`` (``(i + 0.5) n_in / n_out - 0.5``; ``n_out`` may be traced)."""
    i = torch.arange(n_out, device=like.device).to(like.dtype)
    return (i + 0.5) * float(n_in) / float_count(i) - 0.5


def resize_hw_matrix(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """:func:`resize_hw` (bicubic, ``align_corners=False``) as two matmuls with
    :func:`bicubic_matrix` (the export form of a resize; equal up to float rounding)."""
    h0, w0 = int(x.shape[-2]), int(x.shape[-1])  # stored grids: constants in a trace
    ah = bicubic_matrix(interpolation_positions(size[0], h0, x), h0)
    aw = bicubic_matrix(interpolation_positions(size[1], w0, x), w0).transpose(0, 1)
    # operands of equal shape but the last two dims, no broadcasting (OpenVINO's CPU plugin
    # turns a broadcast matmul into a FullyConnected node that fails at inference)
    lead = list(x.shape[:-2])
    return ah.expand(lead + list(ah.shape)) @ x @ aw.expand(lead + list(aw.shape))
