"""Backbone core: torch + timm only.

Importing this package registers every variant with timm (``lsnet_t`` ...)
and with :func:`create_backbone`.
"""
from . import lisanet, lolvit, lsnet  # noqa: F401  (register the variants)
from .checkpoint import LoadResult, load_checkpoint
from .factory import create_backbone
from .forms import prepare_export, set_form
from .profiling import count_flops, time_interleaved
from .registry import get_variant, list_backbones, variant_by_arch

__all__ = ["create_backbone", "load_checkpoint", "LoadResult", "list_backbones", "get_variant",
           "variant_by_arch", "set_form", "prepare_export", "count_flops", "time_interleaved"]
