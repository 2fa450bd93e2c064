"""Convert the official LSNet dense checkpoints into checkpoints our configs load.

The official RetinaNet / Mask R-CNN (mmdet 2.x) and Semantic FPN (mmseg 0.x)
files hold ``state_dict`` with ``backbone.*`` (official LSNet names),
``neck.*`` (mmdet ``FPN`` / ``LSNetFPN``) and head keys. Our models have the
same layout (the mm backbone is the LSNet model itself, ``backbone.*`` with the
official names); necks and heads keep mmdet/mmseg names, which did not change
for these heads between 2.x/0.x and 3.x/1.x. The backbone part goes through the
family's ``checkpoint_filter`` (drops
``attention_bias_idxs``, resizes attention-bias tables), every key is checked
against the model the config builds, and keys that cannot be placed are
reported by name, never dropped silently.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, NamedTuple, Union

import torch

from lsdense.models.checkpoint import select_prefix

__all__ = ["ConvertResult", "convert_state_dict", "convert_official"]


class ConvertResult(NamedTuple):
    """What :func:`convert_state_dict` did."""

    state_dict: Dict[str, torch.Tensor]
    unmapped: List[str]  # official keys with no place in our model (with the reason)
    missing: List[str]  # our model's keys the official file does not fill
    dropped: List[str]  # keys intentionally dropped (buffers rebuilt by the model)
    resized: List[str]


def convert_state_dict(official: Dict[str, torch.Tensor], model: torch.nn.Module) -> ConvertResult:
    """Map an official dense state dict onto ``model`` (an mmdet/mmseg model with our backbone)."""
    net = model.backbone
    own = model.state_dict()
    try:
        backbone = select_prefix(official, "backbone")
    except ValueError:  # no backbone key: nothing maps (convert_official names the file)
        backbone = {}
    dropped: List[str] = []
    resized: List[str] = []
    filt = getattr(net, "checkpoint_filter", None)
    if filt is not None:
        backbone, dropped, resized = filt(backbone, net.state_dict())
    out: Dict[str, torch.Tensor] = {f"backbone.{k}": v for k, v in backbone.items()}
    out.update({k: v for k, v in official.items() if not k.startswith("backbone.")})
    unmapped = []
    for key in list(out):
        if key not in own:
            unmapped.append(f"{key} (no such key in the model)")
            out.pop(key)
        elif out[key].shape != own[key].shape:
            unmapped.append(f"{key} (shape {tuple(out[key].shape)} vs model {tuple(own[key].shape)})")
            out.pop(key)
    missing = sorted(k for k in own if k not in out and not k.endswith("num_batches_tracked"))
    return ConvertResult(out, sorted(unmapped), missing, [f"backbone.{k}" for k in dropped],
                         [f"backbone.{k}" for k in resized])


def convert_official(src: Union[str, Path], config: Union[str, Path], dst: Union[str, Path],
                     trusted: bool = False) -> ConvertResult:
    """Convert ``src`` for ``config`` and save an mmengine-style checkpoint at ``dst``.

    Args:
        src: the official checkpoint (``{'state_dict': ...}``, ``{'model': ...}`` or raw).
        config: our config the result is for (its model decides the target keys).
        dst: output path; load it with ``load_from`` / ``tools/test.py``.
        trusted: unpickle ``src`` fully (only for files you trust; mmdet 2.x ``meta``
            may hold objects the weights-only loader refuses).
    """
    from mmengine.config import Config

    from lsdense.models.checkpoint import drop_module_prefix, read_checkpoint, unwrap_state_dict

    from .checks import framework_of

    cfg = Config.fromfile(str(config))
    if framework_of(cfg) == "mmdet":
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    else:
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    model_cfg = cfg.model.copy()
    model_cfg.backbone.init_cfg = None  # the converted file carries the backbone weights
    model = MODELS.build(model_cfg)
    if not hasattr(getattr(model, "backbone", None), "checkpoint_filter"):
        raise ValueError(f"{config} does not use an lsdense backbone; nothing to convert for.")
    official = unwrap_state_dict(read_checkpoint(src, trusted=trusted))
    official = drop_module_prefix(official)
    result = convert_state_dict(official, model)
    if not result.state_dict:
        raise ValueError(f"No key of {src} maps onto the model of {config}; is it an official "
                         f"dense checkpoint of the same method and variant?")
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"meta": {"converted_from": str(src), "config": str(config)},
                "state_dict": result.state_dict}, str(dst))
    return result
