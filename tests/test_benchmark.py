"""The FLOP counter (lsdense.models.count_flops) and the benchmark tool (tools/benchmark.py):
explicit op counts, comparison logic, CLI output (FLOPs against the papers:
test_published.py).

No timing assertions: only the tool's logic on tiny inputs."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from lsdense.models import count_flops, create_backbone

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def B():
    """tools/benchmark.py, imported as the tool it is (not part of the package)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import benchmark
    return benchmark


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


def test_unfused_build_uses_reference_ska(B):
    build = B.build
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
                          "--sizes", "64", "--fused", "both", "--repeats", "2", "--warmup", "1", "--peers",
                          "--threads", "1",
                          "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = json.loads((tmp_path / "r.json").read_text())
    assert [r["fused"] for r in rows] == [False, True]
    assert all(r["median_ms"] > 0 and r["params_m"] > 10 for r in rows)
    assert "| lsnet_t | ours | 64 |" in (tmp_path / "r.md").read_text()


def test_benchmark_ska_reports_both_paths(B):
    benchmark_ska = B.benchmark_ska
    res = benchmark_ska(shape=(1, 16, 8, 8), repeats=2)
    assert set(res) == {"reference_fwd_ms", "reference_fwd_bwd_ms", "fast_fwd_ms", "fast_fwd_bwd_ms"}
    assert all(v > 0 for v in res.values())


# --- the comparison tool ------------------------------------------------------------

def test_time_interleaved_alternates_calls_and_counts(B):
    time_interleaved = B.time_interleaved
    order = []
    times = time_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                             repeats=3, warmup=2, threads=1)
    assert order == ["a", "a", "b", "b"] + ["a", "b"] * 3  # warm-up each, then call by call
    assert set(times) == {"a", "b"} and all(len(v) == 3 and min(v) >= 0 for v in times.values())


def test_max_rel_error(B):
    max_rel_error = B.max_rel_error
    ref = (torch.tensor([1.0, -4.0]), [torch.tensor([2.0])])
    assert max_rel_error((torch.tensor([1.0, -3.0]), [torch.tensor([2.0])]), ref) == 0.25
    assert max_rel_error(ref, ref) == 0.0
    with pytest.raises(ValueError, match="shape"):
        max_rel_error((torch.zeros(3), [torch.zeros(1)]), ref)
    with pytest.raises(ValueError, match="tensors"):
        max_rel_error(torch.zeros(2), ref)


class _Tiny(torch.nn.Module):  # named attributes: pnnx writes an nn.Sequential's "0" as self.0
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return torch.relu(self.conv(x))


def test_paths_report_their_error_against_fp32_eager(B):
    make_path = B.make_path; max_rel_error = B.max_rel_error
    torch.manual_seed(0)
    model = _Tiny().eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        ref = model(x)
    err_bf16 = max_rel_error(make_path(model, x, "eager", "bfloat16", 1)(), ref)
    assert 1e-4 < err_bf16 < 5e-2  # bf16 has 8 mantissa bits: visible but small
    assert next(model.parameters()).dtype == torch.float32  # the fp32 model is untouched
    for runtime in B.RUNTIMES:  # [export]: onnxruntime, OpenVINO, ncnn (pnnx)
        assert max_rel_error(make_path(model, x, runtime, "float32", 1)(), ref) < 1e-5, runtime
        with pytest.raises(ValueError, match="float32 only"):
            make_path(model, x, runtime, "bfloat16", 1)
    with pytest.raises(ValueError, match="batch 1"):
        make_path(model, torch.cat([x, x]), "ncnn", "float32", 1)
    with pytest.raises(ValueError, match="backend"):
        make_path(model, x, "tensorrt", "float32", 1)


def test_compile_path_matches_eager(B):
    """The compile backend (inductor, freezing, C++ wrapper: PyTorch's CPU inference
    settings) gives eager's outputs."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.GELU()).eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.inference_mode():
        ref = model(x)
    try:
        assert B.max_rel_error(B.make_path(model, x, "compile", "float32", 1)(), ref) < 1e-5
    finally:
        torch._dynamo.reset()


def _row(B, model, role, ms, size=224, group="g", backend="eager", dtype="float32", fused=True):
    return B.BenchResult(model, size, 1, fused, 1.0, 0.5, ms, ms, 1e3 / ms, "cpu", 1, role,
                         backend, dtype, 0.0, group)


def test_ratios_are_peer_time_over_ours_per_group_and_path(B):
    format_ratios = B.format_ratios; format_table = B.format_table; ratios = B.ratios
    rows = [_row(B, "ours_m", "ours", 10.0), _row(B, "peer_m", "peer", 25.0),
            _row(B, "ours_m", "ours", 5.0, backend="onnxruntime"),
            _row(B, "peer_m", "peer", 4.0, backend="onnxruntime"),
            _row(B, "ours_m", "ours", 40.0, size=640), _row(B, "peer_m", "peer", 20.0, size=640)]
    got = {(o.input_size, o.backend, other.model, other.backend): r for o, other, r in ratios(rows)}
    assert got == {(224, "eager", "peer_m", "eager"): 2.5,
                   (224, "eager", "ours_m", "onnxruntime"): 0.5,
                   (224, "onnxruntime", "peer_m", "onnxruntime"): 0.8,
                   (224, "onnxruntime", "peer_m", "eager"): 5.0,  # the peer eager vs our fastest
                   (640, "eager", "peer_m", "eager"): 0.5}
    text = format_ratios(rows)
    assert "224px  peer_m / ours_m = 2.50 (ours 2.50x faster)" in text
    assert "640px  peer_m / ours_m = 0.50 (ours 2.00x slower)" in text
    assert "224px  ours_m [onnxruntime] / ours_m = 0.50 (ours_m [onnxruntime] 2.00x faster)" in text
    assert "224px  peer_m / ours_m [onnxruntime] = 5.00 (ours 5.00x faster)" in text
    table = format_table(rows).splitlines()
    # each row's ratio: the peer (eager) against our eager base, not against our faster path
    assert "| peer_m | peer | 224 | 1 | yes | eager | float32 |" in table[2] + table[3]
    cells = {(c[1].strip(), c[3].strip(), c[6].strip()): c[14].strip()
             for c in (line.split("|") for line in table[2:])}
    assert cells[("peer_m", "224", "eager")] == "2.50"
    assert cells[("peer_m", "224", "onnxruntime")] == "0.80"  # ours on its own path
    assert cells[("ours_m", "224", "onnxruntime")] == "0.50"


def test_stock_yolo_peer_names(B):
    stock_yolo_peer = B.stock_yolo_peer
    assert stock_yolo_peer("configs/yolo/yolov8n-lolvit_s.yaml") == "yolov8n.yaml"
    assert stock_yolo_peer("yolo11n-lsnet_t.yaml") == "yolo11n.yaml"
    with pytest.raises(ValueError, match="--yolo-peer"):
        stock_yolo_peer("lolvit_s-coco.yaml".replace("-", "_"))


def test_plot_draws_ours_and_peers_per_size(B, tmp_path):
    pytest.importorskip("matplotlib")
    rows = [_row(B, "ours_m", "ours", 10.0), _row(B, "peer_m", "peer", 25.0),
            _row(B, "ours_m", "ours", 40.0, size=640), _row(B, "peer_m", "peer", 20.0, size=640)]
    out = B.plot(rows, tmp_path / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    with pytest.raises(ValueError, match="no fp32"):
        B.plot([_row(B, "ours_m", "ours", 1.0, dtype="bfloat16")], tmp_path / "q.png")


def test_cli_times_peer_and_backends_in_one_run(B, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    B.main(["--models", "lsnet_t", "--peers", "resnet18", "--sizes", "64", "--backend",
                  "eager", "onnxruntime", "--repeats", "1", "--warmup", "0", "--threads", "1",
                  "--json", str(tmp_path / "r.json")])
    rows = json.loads((tmp_path / "r.json").read_text())
    assert [(r["model"], r["role"], r["backend"]) for r in rows] == [
        ("lsnet_t", "ours", "eager"), ("lsnet_t", "ours", "onnxruntime"),
        ("resnet18", "peer", "eager"), ("resnet18", "peer", "onnxruntime")]
    assert all(r["max_rel_err"] < 1e-4 for r in rows)
    assert "resnet18 / lsnet_t = " in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--models", "lsnet_t", "--backend", "onnxruntime", "--dtype", "bfloat16"], "float32 only"),
    (["--models", "lsnet_t", "--backend", "ncnn", "--batch", "2"], "batch 1"),
    (["--models", "resnet50"], "Valid names: hylisanet_b"),
    (["--models", "lsnet_tt"], "Or a family (hylisanet, lisanet, lolvit, lsnet), 'all'"),
    (["--models", "none", "--yolo", "missing.yaml"], "file not found"),
    (["--models", "lsnet_t", "--sizes", "0"], "--sizes must be at least 1"),
    (["--models", "lsnet_t", "--repeats", "0"], "--repeats must be at least 1"),
    (["--models", "lsnet_t", "--threads", "0"], "--threads must be at least 1"),
    (["--models", "none"], "nothing to time"),
    (["--models", "lolvit_s", "--peers", "official"], "peer of LSNet variants only"),
    (["--models", "lsnet_t", "--peers", "resnet1"], "not a timm model name"),
    (["--models", "lsnet_t", "--peers", "--sizes", "32"], "must be at least 64"),
])
def test_cli_rejects_bad_arguments(B, argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        B.main(argv)
    assert exc.value.code != 0 and message in capsys.readouterr().err


def test_benchmark_lisa_compares_the_forms(B):
    benchmark_lisa = B.benchmark_lisa
    res = benchmark_lisa("lisanet_i", size=32, threads=1, repeats=1, warmup=0)
    assert res["reference_ms"] > 0 and res["fast_ms"] > 0 and res["export_ms"] > 0
    assert res["without_spectral_ms"] > 0
    assert res["max_rel_err"] < 1e-4


def test_backbone_train_step_times_both_ska_paths(B):
    benchmark_backbone_train_step = B.benchmark_backbone_train_step
    res = benchmark_backbone_train_step(batch=2, size=(64, 64), threads=1, repeats=1, warmup=0)
    assert res["lsdense_ms"] > 0 and res["unfold_ska_ms"] > 0
    # same weights, same input: the two SKA paths give the same first loss
    assert abs(res["first_loss_lsdense"] - res["first_loss_unfold_ska"]) <= 1e-4 * res["first_loss_unfold_ska"]


def test_detector_train_step_times_both_ska_paths(B):
    pytest.importorskip("mmdet")
    res = B.benchmark_train_step(str(ROOT / "configs/quickstart/retinanet_lsnet_t_toycoco.py"),
                               batch=2, size=(64, 96), threads=1, repeats=1, warmup=0)
    assert res["lsdense_ms"] > 0 and res["unfold_ska_ms"] > 0
    assert abs(res["first_loss_lsdense"] - res["first_loss_unfold_ska"]) <= 1e-3 * res["first_loss_unfold_ska"]


def test_official_peer_is_the_folded_lsnet_graph_with_the_unfold_ska(B):
    """``--peers official``: the official LSNet inference graph, same outputs as ours, unfold SKA."""
    build_official = B.build_official
    from lsdense.models import create_backbone
    from lsdense.models.ska import SKA
    torch.manual_seed(0)
    ours = create_backbone("lsnet_t").eval()
    official = build_official("lsnet_t", torch.device("cpu"))
    official.load_state_dict(ours.fuse().state_dict())
    assert {m.impl for m in official.modules() if isinstance(m, SKA)} == {"reference"}
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        for a, b in zip(official(x), ours(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="LSNet"):
        build_official("lolvit_s", torch.device("cpu"))
