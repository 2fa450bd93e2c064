"""``load_checkpoint``: the one weight loader every adapter uses.

It reads a path or an ``http(s)://`` URL (downloaded once into torch.hub's
cache) in each weights format the Hugging Face hub serves for timm models
(:data:`WEIGHTS_FORMATS`: ``torch.save`` files such as ``pytorch_model.bin``,
``.safetensors`` such as ``model.safetensors``, sharded ``*.index.json`` of
either, or a downloaded model folder holding one of them), unwraps
``{'model': ...}`` / ``{'state_dict': ...}`` files, keeps the
keys under ``prefix`` if one is given, strips ``module.`` / ``_orig_mod.``
(DDP, ``torch.compile``: timm's ``clean_state_dict``) and ``backbone.``
prefixes, lets the model's family adapt the
keys (``checkpoint_filter``: drop buffers, fold distilled heads, resize
resolution-dependent tensors) and reports missing / unexpected keys by name.
"""
from __future__ import annotations

import argparse
import logging
import os
import pickle
import sys
import urllib.error
import zipfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Union
from urllib.parse import urlparse

import torch
import torch.nn as nn

logger = logging.getLogger("lsdense")

_WRAPPER_KEYS = ("state_dict", "model", "model_state", "module")
# what the Hugging Face hub serves for timm models, in timm's order of preference
# (timm.models._hub: model.safetensors before pytorch_model.bin; open_clip_* for CLIP towers),
# then the sharded indexes transformers-style repositories use
HUB_WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors",
                     "open_clip_pytorch_model.bin", "model.safetensors.index.json",
                     "pytorch_model.bin.index.json")
WEIGHTS_FORMATS = ("torch.save file (.pth, .pt, .bin, .pth.tar)", ".safetensors",
                   "sharded index (*.safetensors.index.json, *.bin.index.json)",
                   "a model folder holding " + " / ".join(HUB_WEIGHTS_FILES))
_SAFETENSORS_MAX_HEADER = 100_000_000  # the safetensors format's own header size limit


class LoadResult(NamedTuple):
    """What :func:`load_checkpoint` did, key by key."""

    missing_keys: List[str]
    unexpected_keys: List[str]
    resized_keys: List[str]
    dropped_keys: List[str]


def is_url(path: object) -> bool:
    """True for an ``http://`` / ``https://`` checkpoint address."""
    return isinstance(path, str) and path.startswith(("http://", "https://"))


def url_cache_path(url: str) -> Path:
    """Where :func:`read_checkpoint` keeps the file of ``url``: ``<torch.hub.get_dir()>/checkpoints/
    <file name>``, the cache of ``torch.hub.load_state_dict_from_url`` and of mmengine's
    ``load_from_http`` (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _read_url(url: str, trusted: bool) -> dict:
    """Download ``url`` once into torch.hub's cache (reused offline) and load it weights-only.

    Every process of a distributed run reads the same cache; concurrent first
    downloads are safe (torch.hub writes a temporary file and renames it). A
    ``.safetensors`` address (the hub's ``.../resolve/main/model.safetensors``) is
    downloaded to the same cache and read with :func:`read_checkpoint`.
    """
    cached = url_cache_path(url)
    try:
        if cached.suffix == ".safetensors":
            if not cached.is_file():
                cached.parent.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(url, str(cached), progress=sys.stderr.isatty())
            return read_checkpoint(cached, trusted)
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.hub.load_state_dict_from_url(
                url, map_location="cpu", progress=sys.stderr.isatty(), weights_only=not trusted)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
        raise ConnectionError(
            f"Could not download checkpoint {url}: {err}. Offline? Put the file at {cached} "
            f"(torch.hub's cache; set TORCH_HOME to move it) or give a local path.") from err
    except (pickle.UnpicklingError, RuntimeError) as err:
        raise ValueError(f"Could not read {cached} (downloaded from {url}) with "
                         f"torch.load(weights_only=True): {err}\nIf you trust this file, call "
                         f"load_checkpoint(..., trusted=True).") from err


def checkpoint_format(path: Union[str, Path]) -> str:
    """What kind of weights file ``path`` is, from its bytes (not its name).

    Returns:
        ``'torch'`` (``torch.save``: zip archive, or the legacy format, which starts with
        a pickle protocol byte), ``'safetensors'`` (8-byte little-endian header length,
        then a JSON header), ``'index'`` (a sharded checkpoint's ``*.index.json`` with a
        ``weight_map``) or ``'folder'``.

    Raises:
        ValueError: an empty file, or none of these (one line naming the formats read).
    """
    path = Path(path)
    if path.is_dir():
        return "folder"
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"Checkpoint {path} is empty (0 bytes): an interrupted download or "
                         f"save? Fetch or save it again.")
    with open(path, "rb") as f:
        head = f.read(9)
    if zipfile.is_zipfile(path) or head[:1] == b"\x80":
        return "torch"
    n = int.from_bytes(head[:8], "little") if len(head) == 9 else 0
    if 2 <= n <= min(size - 8, _SAFETENSORS_MAX_HEADER) and head[8:9] == b"{":
        return "safetensors"
    if head[:1] == b"{" and path.name.endswith(".json"):
        return "index"
    raise ValueError(f"{path} is not a PyTorch checkpoint nor another weights format lsdense "
                     f"reads (damaged, or another kind of file?); it reads: "
                     f"{'; '.join(WEIGHTS_FORMATS)}.")


def _read_safetensors(path: Path) -> Dict[str, torch.Tensor]:
    # safetensors is a dependency of timm (its hub and checkpoint loaders read the format)
    import safetensors.torch

    try:
        return safetensors.torch.load_file(str(path), device="cpu")
    except Exception as err:  # safetensors raises its own SafetensorError
        raise ValueError(f"{path} is not a readable safetensors file (damaged or truncated?): "
                         f"{err}") from None


def _read_index(path: Path, trusted: bool) -> Dict[str, torch.Tensor]:
    """A sharded checkpoint: every shard its ``weight_map`` names (beside the index), merged."""
    import json

    try:
        weight_map = json.loads(path.read_text())["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(f"{path} is not a sharded-checkpoint index: expected JSON with a "
                         f"'weight_map' of key -> shard file.") from None
    missing = [s for s in shards if not (path.parent / s).is_file()]
    if missing:
        raise FileNotFoundError(f"{path} names shards that are not beside it: "
                                f"{', '.join(missing)}. Download every shard of the checkpoint.")
    merged: Dict[str, torch.Tensor] = {}
    for shard in shards:
        merged.update(unwrap_state_dict(read_checkpoint(path.parent / shard, trusted)))
    return merged


def _weights_in_folder(path: Path) -> Path:
    """The weights file of a downloaded model folder (a hub snapshot), in timm's preference."""
    for name in HUB_WEIGHTS_FILES:
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f"{path} is a folder without a weights file; expected one of "
                            f"{', '.join(HUB_WEIGHTS_FILES)}.")


def read_checkpoint(path: Union[str, Path], trusted: bool = False) -> dict:
    """Read a checkpoint file, model folder or ``http(s)://`` URL safely, with clear errors.

    Every format of :data:`WEIGHTS_FORMATS`, told apart by :func:`checkpoint_format`.
    ``torch.save`` files are read ``weights_only``: official LSNet files carry an
    ``argparse.Namespace`` of training args; it is allow-listed. Anything else that
    needs full unpickling requires ``trusted=True``. A URL is downloaded once into
    :func:`url_cache_path` (torch.hub's cache) and read from there afterwards, also offline.

    Raises:
        FileNotFoundError: no such file (or a shard / folder file missing). ConnectionError:
        a URL not cached and not downloadable. ValueError: a file of no format above, or
        one that needs more than weights-only unpickling.
    """
    if is_url(path):
        return _read_url(path, trusted)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Checkpoint not found: {path}. Give the path of a weights file "
                                f"({'; '.join(WEIGHTS_FORMATS)}; official LSNet weights: see "
                                f"README 'Official LSNet weights').")
    kind = checkpoint_format(path)
    if kind == "folder":
        return read_checkpoint(_weights_in_folder(path), trusted)
    if kind == "safetensors":
        return _read_safetensors(path)
    if kind == "index":
        return _read_index(path, trusted)
    if trusted:
        return torch.load(path, map_location="cpu", weights_only=False)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" not in str(err):  # not a class weights_only refuses: damaged
            raise ValueError(f"{path} is not a readable PyTorch checkpoint (damaged or "
                             f"truncated?): {str(err).splitlines()[-1]}") from None
        raise ValueError(f"Could not read {path} with torch.load(weights_only=True): {err}\n"
                         f"If you trust this file, call load_checkpoint(..., trusted=True).") from err


def check_checkpoint_file(path: Union[str, Path]) -> None:
    """Raise ValueError unless ``path`` is a ``torch.save`` file (a zip archive, or the legacy
    format): what mmengine's ``load_from`` / ``--checkpoint`` reads. A clear message for an
    empty, truncated or foreign file before mmengine fails deep inside; a safetensors file
    or sharded index is named as such, with the loader that reads it."""
    kind = checkpoint_format(path)
    if kind != "torch":
        raise ValueError(f"{path} is a {kind} checkpoint, which mmengine's loader (load_from, "
                         f"--checkpoint) does not read; load backbone weights with init_cfg="
                         f"dict(type='Pretrained', checkpoint=...) (lsdense's loader reads it), "
                         f"or save a torch.save file.")


def unwrap_state_dict(obj) -> Dict[str, torch.Tensor]:
    """Return the tensor dict inside a raw / ``model`` / ``state_dict`` wrapped checkpoint."""
    while isinstance(obj, dict) and not _is_tensor_dict(obj):
        for key in _WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
        else:
            raise ValueError(f"Checkpoint holds no state dict: top-level keys are "
                             f"{sorted(obj)[:10]}; expected tensors or one of {_WRAPPER_KEYS}.")
    if not isinstance(obj, dict):
        raise TypeError(f"Checkpoint must be a dict of tensors, got {type(obj).__name__}.")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _is_tensor_dict(d: dict) -> bool:
    return len(d) > 0 and sum(isinstance(v, torch.Tensor) for v in d.values()) > len(d) // 2


def drop_module_prefix(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The state dict without the wrapper prefixes of (Distributed)DataParallel (``module.``)
    and ``torch.compile`` (``_orig_mod.``), in either order (timm's ``clean_state_dict``)."""
    from timm.models import clean_state_dict

    return clean_state_dict(state_dict)


def strip_prefixes(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Remove ``module.``; keep only ``backbone.*`` (stripped) when a detector file is given."""
    sd = drop_module_prefix(state_dict)
    if any(k.startswith("backbone.") for k in sd):
        # neck/head keys of a detector file stay and are reported as unexpected
        sd = {(k[len("backbone."):] if k.startswith("backbone.") else k): v for k, v in sd.items()}
    return sd


def timm_filter_fn(state_dict: dict, model: nn.Module) -> Dict[str, torch.Tensor]:
    """timm ``pretrained_filter_fn`` shared by every family.

    Unwraps and strips prefixes like :func:`load_checkpoint`, then applies the
    model's own ``checkpoint_filter`` (drop, fold, resize).
    """
    sd = strip_prefixes(unwrap_state_dict(state_dict))
    return model.checkpoint_filter(sd, model.state_dict())[0]


def select_prefix(state_dict: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    """The keys under ``prefix`` (``'backbone'`` or ``'backbone.'``), with the prefix removed.

    A leading ``module.`` (DataParallel) is ignored. Raises ValueError naming the
    file's top-level names when no key has the prefix.
    """
    prefix = prefix if prefix.endswith(".") else prefix + "."
    sd = drop_module_prefix(state_dict)
    out = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    if not out:
        tops = sorted({k.split(".", 1)[0] + "." for k in sd})
        raise ValueError(f"No key of the checkpoint starts with prefix {prefix!r}; its keys start "
                         f"with {', '.join(tops[:8])}. Give one of those as prefix, or none.")
    return out


def adapt_input_conv_weights(model: nn.Module, state_dict: Dict[str, torch.Tensor],
                             own: Dict[str, torch.Tensor]) -> List[str]:
    """Adapt the input conv of a checkpoint to the model's ``in_chans``, in place, as timm does.

    The input conv is the first ``nn.Conv2d`` of the model that takes ``model.in_chans``
    channels (the stem conv: timm's ``first_conv``). Its checkpoint weight, made for
    ``C`` channels (3 for RGB weights), becomes ``timm.models.adapt_input_conv(in_chans, w,
    base_chans=C)``: summed over channels for 1 channel, else repeated and scaled by
    ``C / in_chans`` (timm ``load_pretrained`` with ``in_chans``). Returns the adapted keys;
    a weight timm cannot adapt is left as it is (reported as a shape mismatch).
    """
    from timm.models import adapt_input_conv

    in_chans = getattr(model, "in_chans", None)
    name = next((n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    key = f"{name}.weight"
    if in_chans is None or name is None or key not in state_dict or key not in own:
        return []
    w, target = state_dict[key], own[key]
    if target.shape[1] * model.get_submodule(name).groups != in_chans or w.shape == target.shape \
            or w.dim() != 4 or (w.shape[0], *w.shape[2:]) != (target.shape[0], *target.shape[2:]):
        return []
    try:
        state_dict[key] = adapt_input_conv(in_chans, w, base_chans=w.shape[1])
    except NotImplementedError:
        return []
    logger.info("%s: input conv %s adapted from %d to %d channels (timm adapt_input_conv)",
                type(model).__name__, key, w.shape[1], in_chans)
    return [key]


def load_checkpoint(model: nn.Module, path_or_state_dict: Union[str, Path, dict],
                    strict: bool = False, trusted: bool = False,
                    prefix: Optional[str] = None) -> LoadResult:
    """Load weights into an lsdense model and report what matched.

    Args:
        model: an lsdense model (classification or dense backbone), or a timm
            ``features_only`` wrapper around one.
        path_or_state_dict: a file or model-folder path in any of :data:`WEIGHTS_FORMATS`
            (``.pth``, ``.safetensors``, ``pytorch_model.bin``, a sharded ``*.index.json``),
            an ``http(s)://`` URL (cached by torch.hub), or an already loaded (possibly
            wrapped) dict.
        strict: raise if any key is missing or unexpected.
        trusted: allow full unpickling of the file (only for files you trust).
        prefix: load only the keys under this prefix (e.g. ``'backbone.'`` of a
            detector checkpoint), with the prefix removed.

    Returns:
        :class:`LoadResult` with missing, unexpected, resized and dropped key names.

    Raises:
        ValueError: no key of the checkpoint matches the model; most tensors have other
        shapes (another variant's file); the model was already fused; or ``strict`` and
        keys differ.
    """
    target = getattr(model, "model", model) if not hasattr(model, "checkpoint_filter") else model
    obj = read_checkpoint(path_or_state_dict, trusted) if isinstance(path_or_state_dict, (str, Path)) \
        else path_or_state_dict
    sd = unwrap_state_dict(obj)
    sd = strip_prefixes(select_prefix(sd, prefix) if prefix else sd)
    own = target.state_dict()
    dropped: List[str] = []
    resized: List[str] = []
    filt = getattr(target, "checkpoint_filter", None)
    if filt is not None:
        sd, dropped, resized = filt(sd, own)
    # levels a pruned backbone does not build (out_indices subset): dropped, not "unexpected"
    info = getattr(target, "feature_info", None)
    num_levels = getattr(target, "num_levels", None)
    if isinstance(info, list) and num_levels:
        pruned = tuple(f["module"] + "." for f in info[num_levels:])
        if pruned:
            dropped += sorted(k for k in sd if k not in own and k.startswith(pruned))
            sd = {k: v for k, v in sd.items() if k in own or not k.startswith(pruned)}
    resized += adapt_input_conv_weights(target, sd, own)

    matched = {k: v for k, v in sd.items() if k in own and v.shape == own[k].shape}
    bad_shape = [k for k, v in sd.items() if k in own and v.shape != own[k].shape]
    unexpected = sorted(k for k in sd if k not in own) + sorted(bad_shape)
    missing = sorted(k for k in own if k not in matched and not k.endswith("num_batches_tracked"))
    name = type(target).__name__
    if getattr(target, "fused", False):
        raise ValueError(f"{name} was fused (fuse() folds each BatchNorm into its conv), so "
                         f"checkpoint layouts no longer fit it: load the weights first, then "
                         f"call fuse().")
    if not matched:
        raise ValueError(
            f"Checkpoint matches no key of {name}: it has {len(sd)} tensors "
            f"(e.g. {list(sd)[:3]}), the model expects e.g. {list(own)[:3]}. "
            f"Is it the right family/variant, or a detector file whose backbone keys "
            f"are under another prefix?")
    if len(bad_shape) > len(matched):
        k = bad_shape[0]
        raise ValueError(
            f"{len(bad_shape)} tensors of the checkpoint have other shapes than {name}'s (only "
            f"{len(matched)} fit; e.g. {k}: checkpoint {tuple(sd[k].shape)} vs model "
            f"{tuple(own[k].shape)}): it is for another variant. Build the variant the file "
            f"was trained for.")
    for k in bad_shape:
        logger.warning("%s: shape mismatch for %s: checkpoint %s vs model %s (not loaded)",
                       name, k, tuple(sd[k].shape), tuple(own[k].shape))
    if strict and (missing or unexpected):
        raise ValueError(f"{name}: strict loading failed; missing keys: {missing}; "
                         f"unexpected keys: {unexpected}")
    target.load_state_dict(matched, strict=False)
    logger.info("%s: loaded %d/%d tensors", name, len(matched), len(own))
    if missing:
        logger.warning("%s: missing keys (left at init): %s", name, ", ".join(missing))
    if unexpected:
        logger.warning("%s: unexpected keys (ignored): %s", name, ", ".join(unexpected))
    if resized:
        logger.info("%s: resized to this model (resolution, input channels): %s", name,
                    ", ".join(resized))
    if dropped:
        logger.info("%s: dropped: %s", name, ", ".join(dropped))
    return LoadResult(missing, unexpected, resized, dropped)
