"""The install: the mmcv build decision (scripts/mmcv_build.py) on made-up CPU and GPU machines; the package metadata's version bounds."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "mmcv_build.py"
_spec = importlib.util.spec_from_file_location("mmcv_build", SCRIPT)
mb = importlib.util.module_from_spec(_spec)
sys.modules["mmcv_build"] = mb  # dataclasses look their module up by name
_spec.loader.exec_module(mb)

H100 = [(9, 0)]
NVCC_13 = ("/usr/local/cuda-13.0/bin/nvcc", "13.0")


def _machine(**kw):
    base = dict(torch_version="2.14.1+cu130", torch_cuda="13.0", capabilities=H100, nvcc=NVCC_13)
    return mb.Machine(**{**base, **kw})


def test_cpu_machine_gets_cpu_key():
    p = mb.plan("2.1.0", _machine(capabilities=[], nvcc=None))
    assert (p.key, p.device, p.cuda_home, p.arch_list) == ("mmcv-2.1.0+torch2.14.1-cpu", "cpu", "", "")


def test_cpu_only_torch_is_cpu_build_even_with_a_gpu():
    p = mb.plan("2.1.0", _machine(torch_version="2.14.1+cpu", torch_cuda=None))
    assert p.key == "mmcv-2.1.0+torch2.14.1-cpu"
    assert "CPU-only" in p.notes[0]


def test_cuda_machine_with_matching_nvcc():
    p = mb.plan("2.1.0", _machine(torch_version="2.14.1+cu128", torch_cuda="12.8",
                                  nvcc=("/usr/local/cuda-12.8/bin/nvcc", "12.8")))
    assert p.key == "mmcv-2.1.0+torch2.14.1-cu128-sm90"
    assert (p.device, p.arch_list) == ("cuda", "9.0")
    assert p.cuda_home == "/usr/local/cuda-12.8"
    assert not p.notes


def test_several_architectures_in_key_and_arch_list():
    p = mb.plan("2.1.0", _machine(capabilities=[(9, 0), (8, 0), (9, 0)]))
    assert p.key.endswith("-cu130-sm80+sm90")
    assert p.arch_list == "8.0;9.0"


def test_mismatched_nvcc_is_one_clear_error():
    with pytest.raises(mb.PlanError) as err:
        mb.plan("2.1.0", _machine(nvcc=("/usr/local/cuda/bin/nvcc", "12.4")))
    msg = str(err.value)
    for part in ("CUDA 12.4", "CUDA 13.0", "/usr/local/cuda/bin/nvcc", "cuda-toolkit",
                 "CUDA_HOME", "LSDENSE_MMCV_DEVICE=cpu"):
        assert part in msg


def test_minor_mismatch_builds_with_a_note():
    p = mb.plan("2.1.0", _machine(nvcc=("/opt/cuda/bin/nvcc", "13.1")))
    assert p.device == "cuda" and "13.1" in p.notes[0]


def test_no_nvcc_is_one_clear_error():
    with pytest.raises(mb.PlanError) as err:
        mb.plan("2.1.0", _machine(nvcc=None, candidates=["/usr/local/cuda/bin/nvcc"]))
    msg = str(err.value)
    assert "no nvcc was found" in msg and "/usr/local/cuda/bin/nvcc" in msg
    assert '"cuda-toolkit[nvcc,nvvm,crt,cccl,cudart]==13.0.*"' in msg


def test_forced_cuda_without_gpu_needs_arch_list():
    with pytest.raises(mb.PlanError, match="TORCH_CUDA_ARCH_LIST"):
        mb.plan("2.1.0", _machine(capabilities=[], device="cuda"))
    p = mb.plan("2.1.0", _machine(capabilities=[], device="cuda", arch_list="8.0;9.0+PTX"))
    assert p.key.endswith("-cu130-sm80+sm90") and p.arch_list == "8.0;9.0+PTX"


def test_forced_cuda_with_cpu_torch_and_forced_cpu():
    with pytest.raises(mb.PlanError, match="CPU-only"):
        mb.plan("2.1.0", _machine(torch_cuda=None, device="cuda"))
    assert mb.plan("2.1.0", _machine(device="cpu")).device == "cpu"
    with pytest.raises(mb.PlanError, match="auto, cpu or cuda"):
        mb.plan("2.1.0", _machine(device="gpu"))


def test_shell_lines_are_quoted():
    p = mb.Plan(key="k", device="cuda", cuda_home="/a b", arch_list="8.0;9.0")
    out = subprocess.run(["bash", "-c", f'{p.shell()}\necho "$MMCV_CUDA_HOME|$MMCV_ARCH_LIST"'],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "/a b|8.0;9.0"


def _fake_nvcc(folder: Path, release: str) -> Path:
    nvcc = folder / "bin" / "nvcc"
    nvcc.parent.mkdir(parents=True)
    nvcc.write_text(f"#!/bin/sh\necho 'Cuda compilation tools, release {release}, V{release}.88'\n")
    nvcc.chmod(0o755)
    (folder / "include").mkdir()
    (folder / "include" / "cuda_runtime.h").touch()
    return nvcc


def test_find_nvcc_order_and_pip_toolkit(tmp_path):
    site = tmp_path / "site"
    pip_nvcc = _fake_nvcc(site / "nvidia" / "cu13", "13.0")
    found, places = mb.find_nvcc({"PATH": str(tmp_path / "empty")}, str(site), "13.0", system=())
    assert found == (str(pip_nvcc), "13.0")
    on_path = _fake_nvcc(tmp_path / "path", "12.4")
    found, _ = mb.find_nvcc({"PATH": str(on_path.parent)}, str(site), "13.0", system=())
    assert found == (str(on_path), "12.4")  # PATH comes before the venv's toolkit
    usr = _fake_nvcc(tmp_path / "usr-local-cuda", "13.0")
    found, _ = mb.find_nvcc({"PATH": str(on_path.parent)}, str(site), "13.0",
                            system=(str(usr.parent.parent),))
    assert found == (str(usr), "13.0")  # /usr/local/cuda before PATH
    home = _fake_nvcc(tmp_path / "home", "13.1")
    found, places = mb.find_nvcc({"CUDA_HOME": str(home.parent.parent), "PATH": str(on_path.parent)},
                                 str(site), "13.0")
    assert found == (str(home), "13.1") and places == [str(home)]
    found, places = mb.find_nvcc({"CUDA_HOME": str(tmp_path / "none")}, str(site), "13.0")
    assert found is None and places == [str(tmp_path / "none" / "bin" / "nvcc")]


def test_nvcc_wrapper_script_is_no_toolkit(tmp_path):
    wrapper = tmp_path / "bin" / "nvcc"
    wrapper.parent.mkdir()
    wrapper.write_text("#!/bin/sh\necho 'release 13.0, V13.0.88'\n")
    wrapper.chmod(0o755)
    found, places = mb.find_nvcc({"PATH": str(wrapper.parent)}, str(tmp_path), "13.0", system=())
    assert found is None and str(wrapper) in places


def test_plan_command_on_this_machine():
    import torch

    env = {k: v for k, v in os.environ.items() if not k.startswith("LSDENSE_MMCV")}
    out = subprocess.run([sys.executable, str(SCRIPT), "plan", "--mmcv", "2.1.0"], env=env,
                         capture_output=True, text=True, timeout=120)
    if torch.cuda.is_available():
        pytest.skip("GPU machine: the plan depends on its toolkit")
    assert out.returncode == 0, out.stderr
    assert f"MMCV_KEY=mmcv-2.1.0+torch{torch.__version__.split('+')[0]}-cpu" in out.stdout
    assert "MMCV_DEVICE=cpu" in out.stdout


def test_check_ops_cpu():
    pytest.importorskip("mmcv.ops")
    assert "nms/RoIAlign on cpu" in mb.check_ops("cpu")


def test_cpath_for_the_cuda_library_headers_torch_ships():
    p = mb.plan("2.1.0", _machine(torch_cuda_include="/venv/site/nvidia/cu13/include"))
    assert p.cpath == "/venv/site/nvidia/cu13/include"
    assert "MMCV_CPATH=/venv/site/nvidia/cu13/include" in p.shell()


def test_forced_cuda_plan_on_this_machine():
    """A CUDA plan from this machine's real toolkit (a GPU-less build host): nvcc found, its
    release matched against torch's, the headers torch's CUDA libraries ship added."""
    import torch

    if not torch.version.cuda:
        pytest.skip("CPU-only torch")
    m = mb.probe({**os.environ, "LSDENSE_MMCV_DEVICE": "cuda", "TORCH_CUDA_ARCH_LIST": "9.0"})
    if m.nvcc is None:
        pytest.skip("no CUDA toolkit on this machine")
    try:
        p = mb.plan("2.1.0", m)
    except mb.PlanError as err:  # a toolkit of another major version: the error names both
        assert m.nvcc[1] in str(err) and torch.version.cuda in str(err)
        return
    assert p.key.endswith(f"-{mb._cuda_tag(torch.version.cuda)}-sm90") and p.device == "cuda"
    assert Path(p.cuda_home, "bin").is_dir()
    if p.cpath:
        assert Path(p.cpath, "cusparse.h").is_file()


def test_ultralytics_ddp_launcher_requirements_installed():
    """What Ultralytics' multi-GPU launcher checks for (ultralytics/utils/dist.py) is in the stack."""
    import re

    dist = pytest.importorskip("ultralytics.utils.dist")
    from importlib.metadata import version

    from packaging.requirements import Requirement

    reqs = re.findall(r'check_requirements\("([^"]+)"\)', Path(dist.__file__).read_text())
    assert reqs, "ultralytics/utils/dist.py no longer checks requirements: update this test"
    for req in map(Requirement, reqs):
        assert req.specifier.contains(version(req.name)), f"{req} not met"


# --- package metadata ---------------------------------------------------------------

def test_minimum_versions_are_the_pyprojects_and_are_enforced(monkeypatch):
    """lsdense.versions.MINIMUM and pyproject.toml give the same lower bounds, and an older
    release stops ``import`` with one line naming the install command."""
    import re
    import tomllib
    from importlib import metadata

    from lsdense import versions
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"]) + [
        s for extra in project["optional-dependencies"].values() for s in extra]
    lower = {m.group(1): m.group(2) for s in specs
             if (m := re.match(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", s))}
    assert {name: lower[name] for name in versions.MINIMUM} == {
        name: minimum for name, (minimum, _) in versions.MINIMUM.items()}
    assert project["requires-python"] == ">=3.10"
    real = metadata.version
    monkeypatch.setattr(metadata, "version",
                        lambda name: "1.0.28" if name == "timm" else real(name))
    with pytest.raises(ImportError, match=r"lsdense needs timm>=1\.0\.29, found timm 1\.0\.28: "
                                          r"pip install 'lsdense'"):
        versions.require("torch", "timm")
    monkeypatch.setattr(metadata, "version", lambda name: (_ for _ in ()).throw(
        metadata.PackageNotFoundError(name)))
    with pytest.raises(ImportError, match=r"ultralytics>=8\.4, which is not installed: "
                                          r"pip install 'lsdense\[yolo\]'"):
        versions.require("ultralytics")
