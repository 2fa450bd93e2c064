"""Benchmark library: explicit op counts, CLI output (FLOPs against the papers:
test_published.py)."""
import json
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from lsdense.benchmark import build, count_flops
from lsdense.models import create_backbone

ROOT = Path(__file__).resolve().parents[1]


def test_ska_flops_are_counted_explicitly():
    """FlopCounterMode does not see SKA; our count adds exactly 9 MACs per SKA output element."""
    model = create_backbone("lsnet_t").eval()
    x = torch.randn(1, 3, 128, 128)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    # LSNet-T: one LSConv at stride 16 (128 ch), four at stride 32 (256 ch)
    ska_elems = 128 * 8 * 8 + 4 * 256 * 4 * 4
    assert count_flops(model, x) - counter.get_total_flops() == 2 * 9 * ska_elems


def test_lisa_fft_flops_are_counted():
    model = create_backbone("lisanet_s").eval()
    x = torch.randn(1, 3, 64, 64)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    from lsdense.models.lisanet import lisa_extra_flops
    assert count_flops(model, x) - counter.get_total_flops() == lisa_extra_flops(model, (64, 64))


def test_unfused_build_uses_reference_ska():
    torch.manual_seed(0)
    unfused = build("lsnet_t", fused=False, device=torch.device("cpu"))
    torch.manual_seed(0)  # same initial weights
    fused = build("lsnet_t", fused=True, device=torch.device("cpu"))
    assert {m.impl for m in unfused.modules() if type(m).__name__ == "SKA"} == {"reference"}
    assert not any(type(m).__name__ in ("Conv2d_BN", "RepVGGDW") for m in fused.modules())
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        for a, b in zip(unfused(x), fused(x)):
            assert ((a - b).abs().max() / b.abs().max()) < 1e-3


def test_cli_writes_json_and_markdown(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "benchmark.py"), "--models", "lsnet_t",
                          "--sizes", "64", "--fused", "both", "--repeats", "2", "--warmup", "1",
                          "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = json.loads((tmp_path / "r.json").read_text())
    assert [r["fused"] for r in rows] == [False, True]
    assert all(r["median_ms"] > 0 and r["params_m"] > 10 for r in rows)
    assert "| lsnet_t | 64 |" in (tmp_path / "r.md").read_text()


def test_cli_rejects_unknown_model():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "benchmark.py"), "--models", "resnet50"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "Valid names" in out.stderr


def test_benchmark_ska_reports_both_paths():
    from lsdense.benchmark import benchmark_ska
    res = benchmark_ska(shape=(1, 16, 8, 8), repeats=2)
    assert set(res) == {"reference_fwd_ms", "reference_fwd_bwd_ms", "fast_fwd_ms", "fast_fwd_bwd_ms"}
    assert all(v > 0 for v in res.values())
