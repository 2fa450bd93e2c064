"""mmengine optimizer-wrapper constructor that exempts what the model's ``no_weight_decay()`` names.

Use it from a config (``configs/_base_/schedules/*.py`` do)::

    optim_wrapper = dict(type='OptimWrapper', constructor='NoWeightDecayOptimWrapperConstructor',
                         optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05))

Every submodule with a ``no_weight_decay()`` method (timm's API: the lsdense backbones, timm
models) contributes the parameters it names, prefixed with the submodule's path (e.g.
``backbone.blocks4.0.mixer.m.attention_biases``); each gets ``decay_mult=0`` on top of the
``custom_keys`` entry mmengine would otherwise pick for it (so a user ``lr_mult`` still applies).
The rest of ``paramwise_cfg`` (``norm_decay_mult``, ...) works as in mmengine's
``DefaultOptimWrapperConstructor``, which builds the groups.

Why not hand-written ``custom_keys``: the keys are substrings repeated in every config and must
follow the backbone's parameter names; here they come from the model itself.
"""
from __future__ import annotations

from typing import Dict, List, Set

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper

__all__ = ["NoWeightDecayOptimWrapperConstructor", "no_weight_decay_names"]


def no_weight_decay_names(model: nn.Module) -> Set[str]:
    """Full parameter names (as ``model.named_parameters()``) that the model's submodules exempt
    from weight decay through their ``no_weight_decay()`` method.

    Names a method returns that its module does not have are ignored, as timm's
    ``param_groups_weight_decay`` does (timm's ViT names ``dist_token`` whether it has one or not).
    """
    names: Set[str] = set()
    for prefix, module in model.named_modules():
        method = getattr(module, "no_weight_decay", None)
        if not callable(method):
            continue
        exempt = set(method()) & {n for n, _ in module.named_parameters()}
        names.update(f"{prefix}.{n}" if prefix else n for n in exempt)
    return names


class NoWeightDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` plus ``decay_mult=0`` for the parameters named by the
    model's ``no_weight_decay()`` methods (see the module docstring).

    The parameter groups equal those of ``DefaultOptimWrapperConstructor`` given, for every
    exempt parameter ``n``, ``custom_keys[n] = dict(<the custom key that matches n>,
    decay_mult=0.0)``: one group per parameter, as mmengine builds with any ``paramwise_cfg``.

    Raises:
        ValueError: the optimizer has no ``weight_decay`` (there is nothing to exempt from).
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        core = model.module if hasattr(model, "module") else model  # DDP, as mmengine
        if self.base_wd is None:
            raise ValueError(f"{type(self).__name__} exempts parameters from weight decay, but "
                             "the optimizer config sets no weight_decay; set one or use "
                             "constructor='DefaultOptimWrapperConstructor'.")
        user_keys: Dict[str, dict] = dict(self.paramwise_cfg.get("custom_keys", {}))
        # mmengine picks the longest matching key, ties in alphabetical order
        ordered: List[str] = sorted(sorted(user_keys), key=len, reverse=True)
        keys = dict(user_keys)
        for name in no_weight_decay_names(core):
            match = next((k for k in ordered if k in name), None)
            keys[name] = {**user_keys.get(match, {}), "decay_mult": 0.0}
        own = self.paramwise_cfg
        self.paramwise_cfg = {**own, "custom_keys": keys}
        try:
            return super().__call__(model)
        finally:
            self.paramwise_cfg = own
