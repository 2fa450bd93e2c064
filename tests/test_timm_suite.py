"""timm's own model tests (``tests/test_models.py`` of the installed timm) on the lsdense models.

The test file is not vendored: ``make install`` (``scripts/fetch_timm_tests.py``) takes it
from the installed timm version's source distribution on PyPI into
``~/.cache/lsdense/timm-tests/<version>/``; this test never uses the network. Two lists
of the file are extended (``FEAT_INTER_FILTERS`` += the lsdense modules, so that the
``forward_intermediates`` / ``prune_intermediate_layers`` tests run;
``NON_STD_FILTERS`` += ``lisanet_i``, the isotropic model, as timm's ViTs), and
``tests/timm_suite/lsdense_timm_conftest.py`` (copied in as ``conftest.py``)
keeps only the lsdense models and leaves out the tests that download pretrained
weights. The full run and its results are in
``docs/timm.md``; here (the slow tier, ``make test-slow``) a subset of models: one per
family and kind (hierarchical, hybrid, isotropic), every test function.
"""
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import timm

REPO = Path(__file__).resolve().parents[1]
# one model per family and kind; `LSDENSE_TIMM_MODELS=all` runs all ten (docs/timm.md)
SUBSET = "lsnet_t,lolvit_s,hylisanet_s,lisanet_i"
PATCHES = {
    "FEAT_INTER_FILTERS = [\n": "    'lsnet', 'lolvit', 'lisanet',  # lsdense\n",
    "NON_STD_FILTERS = [\n": "    'lisanet_i',  # lsdense: isotropic, as timm's ViTs\n",
}
# test functions of timm's file that must run on every selected model
EXPECTED_TESTS = {
    "test_model_forward", "test_model_backward", "test_model_default_cfgs",
    "test_model_default_cfgs_non_std", "test_model_forward_torchscript",
    "test_model_forward_features", "test_model_forward_intermediates_features",
    "test_model_forward_intermediates", "test_prune_intermediate_layers_contract",
    "test_model_forward_fx", "test_model_backward_fx", "test_model_forward_fx_torchscript",
}


def timm_test_file() -> Path:
    """``tests/test_models.py`` of the installed timm, as ``make install`` cached it."""
    sys.path.insert(0, str(REPO / "scripts"))
    from fetch_timm_tests import cached_path
    path = cached_path()
    if not path.is_file():
        raise AssertionError(f"{path} is missing: timm's test file is fetched by `make install` "
                             f"(python scripts/fetch_timm_tests.py)")
    return path


def prepare_run_dir(run_dir: Path) -> None:
    """timm's file with the lsdense entries added to its two lists, plus our conftest."""
    text = timm_test_file().read_text()
    for anchor, line in PATCHES.items():
        if text.count(anchor) != 1:
            raise AssertionError(f"timm {timm.__version__}'s tests/test_models.py has no single "
                                 f"{anchor.strip()!r}; update PATCHES in {Path(__file__).name}")
        text = text.replace(anchor, anchor + line)
    (run_dir / "test_models.py").write_text(text)
    # not named conftest.py in tests/: pytest would load its collection hook for `make test`
    shutil.copy(REPO / "tests" / "timm_suite" / "lsdense_timm_conftest.py",
                run_dir / "conftest.py")
    (run_dir / "pytest.ini").write_text("[pytest]\n")


def run_suite(run_dir: Path, models: str) -> dict:
    """Run timm's tests in ``run_dir``; returns ``{test id: 'passed' | 'failed' | 'skipped'}``."""
    xml = run_dir / "results.xml"
    env = dict(os.environ, LSDENSE_TIMM_MODELS=models, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH"))
                                          if p))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore",
           f"--junitxml={xml}", "test_models.py"]
    proc = subprocess.run(cmd, cwd=run_dir, env=env, capture_output=True, text=True, timeout=1800)
    if not xml.is_file():
        raise AssertionError(f"timm's suite did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    results = {}
    for case in ET.parse(xml).iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = "skipped" if tag == "skipped" else "failed"
                if outcome == "failed":
                    results.setdefault("_messages", []).append(
                        f"{case.get('name')}: {node.get('message', '')[:300]}")
        results[case.get("name")] = outcome
    results["_output"] = proc.stdout[-3000:]
    return results


@pytest.mark.slow  # ~45 s: make test-slow (CI runs it)
def test_timm_model_suite(tmp_path):
    """Every selected test of timm's own suite passes on the lsdense models (no skips)."""
    prepare_run_dir(tmp_path)
    models = os.environ.get("LSDENSE_TIMM_MODELS", SUBSET)
    results = run_suite(tmp_path, models)
    messages = results.pop("_messages", [])
    output = results.pop("_output")
    failed = sorted(k for k, v in results.items() if v == "failed")
    skipped = sorted(k for k, v in results.items() if v == "skipped")
    assert not failed, "timm's tests failed:\n" + "\n".join(messages) + "\n" + output
    assert not skipped, f"timm's tests skipped: {skipped}"
    ran = {name.split("[")[0] for name in results}
    assert ran == EXPECTED_TESTS, f"test functions run: {sorted(ran)}"
    assert models != SUBSET or len(results) == 44, f"{len(results)} items ran, expected 44"
    selected = {m.strip() for m in models.split(",")} if models != "all" else None
    per_model = {name[name.index("[") + 1:-1].split("-")[-1].split(".")[0] for name in results}
    assert selected is None or per_model == selected, per_model
