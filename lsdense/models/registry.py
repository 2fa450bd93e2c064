"""Variant table shared by ``create_backbone`` and the framework adapters.

Each family file registers its variants here (name -> model class, the
variant's numbers, and the extra arguments its dense-prediction backbone
uses), next to its timm ``@register_model`` entry points.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Type

import torch.nn as nn


@dataclass(frozen=True)
class Variant:
    """One registered backbone variant."""

    name: str
    family: str
    arch: str
    model_cls: Type[nn.Module]
    model_args: dict
    dense_args: dict = field(default_factory=dict)


_VARIANTS: Dict[str, Variant] = {}


def register_variants(family: str, model_cls: Type[nn.Module], model_args: Dict[str, dict],
                      dense_args: dict | None = None) -> None:
    """Register every ``<family>_<arch>`` variant of a family (idempotent)."""
    for name, args in model_args.items():
        arch = name.split("_", 1)[1]
        _VARIANTS[name] = Variant(name, family, arch, model_cls, dict(args), dict(dense_args or {}))


def list_backbones(family: str | None = None) -> List[str]:
    """Names accepted by ``create_backbone`` (optionally of one family)."""
    return sorted(n for n, v in _VARIANTS.items() if family is None or v.family == family)


def get_variant(name: str) -> Variant:
    """Look a variant up by name, with an error that lists the valid names."""
    try:
        return _VARIANTS[name]
    except KeyError:
        raise ValueError(f"Unknown backbone {name!r}. Valid names: {', '.join(list_backbones())}."
                         ) from None


def variant_by_arch(family: str, arch: str) -> Variant:
    """Look a variant up by family and arch (as adapters take it: ``arch='t'``)."""
    archs = {v.arch: v for v in _VARIANTS.values() if v.family == family}
    if arch not in archs:
        raise ValueError(f"Unknown arch {arch!r} for {family}. Valid archs: "
                         f"{', '.join(sorted(archs))}.")
    return archs[arch]
