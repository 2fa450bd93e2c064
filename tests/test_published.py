"""Published figures (``Variant.published``) against the models we build: parameters and
FLOPs of every registered variant, within the tolerances stated here; the figures'
sources and their use by the benchmark and the docs."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from lsdense.models import count_flops, create_backbone, get_variant, list_backbones

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def B():
    """tools/benchmark.py (it writes the docs' tables from the registry)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import benchmark
    return benchmark

# family -> (parameter tolerance, GMACs tolerance), relative; 0 = exact, None = not asserted.
TOLERANCE = {
    # the official models' exact counts (run on CPU, spec); FLOPs rounded to 0.1 G by the paper
    "lsnet": (0, 0.10),
    # params: the per-module Tables 16 / 17 totals, ours within 2 % (attention part rebuilt from
    # the text, docs/lolvit.md). FLOPs: the paper's 5.9 / 9.2 G "at 384" are ~3x our 0.91 / 1.44
    # GMACs there; no reading of the text reproduces them (docs/benchmarks.md), so not asserted
    "lolvit": (0.02, None),
    # layout reconstructed from the text, every figure within 10 % (docs/lisanet.md)
    "lisanet": (0.10, 0.10),
    "hylisanet": (0.10, 0.10),
}
VARIANTS = list_backbones()


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_every_variant_has_sourced_figures():
    assert set(TOLERANCE) == {get_variant(n).family for n in VARIANTS}
    for name in VARIANTS:
        pub = get_variant(name).published
        assert pub is not None, name
        figures = [pub.params_m, pub.gmacs, pub.top1] + \
            [f for metrics in pub.dense.values() for f in metrics.values()]
        for fig in figures:
            assert fig.value > 0 and fig.source.split()[0] in ("LSNet", "LOLViT", "LiSA", "official")


@pytest.mark.parametrize("name", VARIANTS)
def test_params_and_flops_match_published(name):
    v = get_variant(name)
    pub = v.published
    params_tol, flops_tol = TOLERANCE[v.family]
    model = v.model_cls(**v.model_args, num_classes=1000 if pub.params_include_head else 0).eval()
    n = sum(p.numel() for p in model.parameters())
    if pub.params is not None:
        assert abs(n - pub.params) <= params_tol * pub.params, (name, n, pub.params)
    else:
        assert abs(n / 1e6 / pub.params_m.value - 1) < params_tol, (name, n, pub.params_m)
    if pub.backbone_params is not None:
        assert sum(p.numel() for p in create_backbone(name).parameters()) == pub.backbone_params
    if flops_tol is not None:
        size = pub.flops_input
        gmacs = count_flops(model, torch.zeros(1, 3, size, size)) / 2e9
        assert abs(gmacs / pub.gmacs.value - 1) < flops_tol, (name, gmacs, pub.gmacs)


def test_docs_tables_are_the_registry(B):
    """docs/benchmarks.md holds ``published_table()`` verbatim, and README's paper top-1
    column reads the same figures, so editing a figure means editing the registry."""
    docs = (ROOT / "docs" / "benchmarks.md").read_text()
    assert B.published_table() in docs
    readme = (ROOT / "README.md").read_text()
    for name in VARIANTS:
        pub = get_variant(name).published
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}` |"))
        top1 = f"{pub.top1.value}"
        if pub.top1_distilled:
            top1 += f" ({pub.top1_distilled.value} distilled)"
        assert row.rstrip().endswith(f"| {top1} |"), (row, top1)


def test_benchmark_table_shows_the_published_figures(B):
    row = B.BenchResult("lsnet_s", 224, 1, True, 15.65, 0.54, 22.4, 22.1, 44.7, "cpu", 2)
    assert B.format_table([row]).splitlines()[-1].endswith("| 16.1 M / 0.5 G @224 / 77.8 (79.0 distilled) |")
