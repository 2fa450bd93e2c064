"""tools/gpu_check.py: its CPU self-test runs (as on a machine without a GPU) and writes reports."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import gpu_check  # noqa: E402


def test_cpu_self_test_writes_reports(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the self-test even on a GPU machine
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--out", str(tmp_path),
                          "--models", "lolvit_s"], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "no CUDA GPU available" in out.stdout
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["machine"]["mode"].startswith("CPU self-test")
    sections = {s["name"]: s for s in data["sections"]}
    assert sections["parity/lolvit_s"]["status"] == "ok"
    assert set(sections["parity/lolvit_s"]["values"]) == {"fp32", "grad", "bf16", "channels_last"}
    assert sections["selftest/runner"]["status"] == "ok"  # a raising check was caught
    assert sections["selftest/timing"]["values"]["matmul_64_ms"] > 0
    assert {n for n, s in sections.items() if s["status"] == "skip"} == \
        {"official/load", *(f"train/{q}" for q in gpu_check.QUICKSTARTS)}
    # throughput and SKA comparison code, with our own LSNet / reference SKA standing in for
    # the official graph and Triton kernel
    assert sections["throughput/lsnet_t"]["values"]["ours/official"] > 0
    assert sections["ska/float32"]["status"] == "ok" and sections["ska/float32"]["values"]["grad_w"] < 1e-5
    assert data["summary"] == {"ok": 5, "fail": 0, "skip": 6}
    md = (tmp_path / "report.md").read_text()
    assert "| parity/lolvit_s | ok |" in md and "Summary: 5 ok, 0 failed, 6 skipped" in md


def test_failed_tolerance_fails_the_section():
    report = gpu_check.Report({"mode": "test"})
    sec = report.run("parity/x", lambda: {"fp32": 1.0, "failed": ["fp32 error 1 > 0.001"]})
    assert (sec.status, sec.error, sec.values) == ("fail", "fp32 error 1 > 0.001", {"fp32": 1.0})
    skipped = report.run("official/load", lambda: gpu_check.load_official(None))
    assert skipped.status == "skip" and "--official" in skipped.error
    assert report.summary() == {"ok": 0, "fail": 1, "skip": 1}
    md = gpu_check.markdown(report.to_json())
    assert "| parity/x | fail |" in md and "## official" in md


def test_official_snapshot_path_is_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: True)
    with pytest.raises(FileNotFoundError, match="THU-MIG/lsnet"):
        gpu_check.load_official(tmp_path)
