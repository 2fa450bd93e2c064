"""conftest for timm's own ``tests/test_models.py``: run it on the lsdense models only.

``tests/test_timm_suite.py`` copies timm's file (from the installed version's
sdist) and this file, as ``conftest.py``, into a temporary directory and runs
pytest there (it is not named conftest.py here, or ``make test`` would load it).
Every collected item is kept only if its ``model_name`` is an lsdense model
(``LSDENSE_TIMM_MODELS``: a comma-separated subset, or ``all``); tests that
download pretrained weights from the Hugging Face hub (``pretrained=True``) are
deselected: lsdense tests use no network except PyPI.
"""
import os

import timm

import lsdense.models  # noqa: F401  (registers the lsdense models with timm)

LSDENSE_MODULES = ["lsnet", "lolvit", "lisanet"]
LSDENSE_MODELS = set(timm.list_models(module=LSDENSE_MODULES))
_SELECTED = os.environ.get("LSDENSE_TIMM_MODELS", "all")
if _SELECTED != "all":
    unknown = set(_SELECTED.split(",")) - LSDENSE_MODELS
    if unknown:
        raise ValueError(f"LSDENSE_TIMM_MODELS names unknown models {sorted(unknown)}; "
                         f"choose from {sorted(LSDENSE_MODELS)} or 'all'.")
    LSDENSE_MODELS = set(_SELECTED.split(","))
NETWORK_TESTS = {"test_model_inference", "test_model_load_pretrained",
                 "test_model_features_pretrained"}


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        model = str(params.get("model_name", "")).split(".")[0]
        ours = model in LSDENSE_MODELS and item.originalname not in NETWORK_TESTS
        (keep if ours else drop).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep
