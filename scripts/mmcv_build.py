"""How ``scripts/install.sh`` gets mmcv's compiled ops: which cached wheel, CPU or CUDA build.

mmcv 2.1.0 ships only a source distribution, so the install builds a wheel once and caches
it. A wheel is only valid for the torch it was built against and, for CUDA tensors, only
when it was built with CUDA for the GPU's architecture: the cache folder says all of that,
``$WHEEL_DIR/<key>/`` with a key such as

    mmcv-2.1.0+torch2.14.1-cpu            built on / for a machine without a usable GPU
    mmcv-2.1.0+torch2.14.1-cu130-sm90     CUDA 13.0 torch, ops compiled for an H100 (sm_90)

Two sub-commands, both run with the venv's python:

``plan``
    Prints shell assignments (``MMCV_KEY=...``) for ``eval``: the key, ``MMCV_DEVICE``
    (cpu/cuda), and for CUDA the ``CUDA_HOME`` and ``TORCH_CUDA_ARCH_LIST`` to build with.
    A CUDA build needs nvcc of torch's CUDA major version (torch's own rule for extensions);
    without one it exits 1 with one message naming the versions and the fix.
``check DEVICE``
    Proves the installed mmcv's ops run on DEVICE: ``nms`` and ``RoIAlign`` on CPU tensors,
    and for ``cuda`` the same on CUDA tensors, agreeing with the CPU results.

``LSDENSE_MMCV_DEVICE`` = ``auto`` (default: CUDA when torch is a CUDA build and sees a GPU),
``cpu`` or ``cuda`` (e.g. building on a GPU-less login node; then ``TORCH_CUDA_ARCH_LIST``
must name the target architectures). The decision is the pure function :func:`plan`,
unit-tested on CPU with made-up machines (``tests/test_install_logic.py``).
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["Machine", "Plan", "PlanError", "plan", "probe", "nvcc_release", "find_nvcc",
           "check_ops", "main"]


class PlanError(RuntimeError):
    """No build is possible on this machine as it is; the message says what to do."""


@dataclass
class Machine:
    """What the build decision depends on (:func:`probe` reads it from the real machine).

    Args:
        torch_version: ``torch.__version__``, e.g. ``'2.14.1+cu130'``.
        torch_cuda: ``torch.version.cuda`` (``'13.0'``), None for a CPU-only torch.
        capabilities: compute capability of each visible GPU, e.g. ``[(9, 0)]``; empty
            when torch sees none.
        nvcc: ``(path, release)`` of the nvcc that would be used (``release`` as ``'13.0'``),
            None when none was found.
        candidates: the places looked in for nvcc (for the error message).
        device: ``LSDENSE_MMCV_DEVICE``: ``'auto'``, ``'cpu'`` or ``'cuda'``.
        arch_list: ``TORCH_CUDA_ARCH_LIST`` from the environment, if set.
        site_packages: the venv's site-packages (where a pip CUDA toolkit would go).
        torch_cuda_include: the headers of the CUDA libraries torch's wheel brings
            (``site-packages/nvidia/cu<major>/include``: cuBLAS, cuSPARSE, cuSOLVER), when the
            toolkit lacks them; ATen's CUDA headers include them.
    """

    torch_version: str
    torch_cuda: Optional[str] = None
    capabilities: List[Tuple[int, int]] = field(default_factory=list)
    nvcc: Optional[Tuple[str, str]] = None
    candidates: List[str] = field(default_factory=list)
    device: str = "auto"
    arch_list: Optional[str] = None
    site_packages: str = ".venv/lib/python3.11/site-packages"
    torch_cuda_include: str = ""


@dataclass
class Plan:
    """One build decision: the cache key and, for CUDA, how to build."""

    key: str
    device: str
    cuda_home: str = ""
    arch_list: str = ""
    cpath: str = ""
    notes: List[str] = field(default_factory=list)

    def shell(self) -> str:
        """``MMCV_KEY=... MMCV_DEVICE=...`` lines for ``eval`` in bash."""
        vals = {"MMCV_KEY": self.key, "MMCV_DEVICE": self.device,
                "MMCV_CUDA_HOME": self.cuda_home, "MMCV_ARCH_LIST": self.arch_list,
                "MMCV_CPATH": self.cpath}
        return "\n".join(f"{k}={shlex.quote(v)}" for k, v in vals.items())


def _base_version(v: str) -> str:
    return v.split("+", 1)[0]


def _cuda_tag(cuda: str) -> str:
    major, minor = cuda.split(".")[:2]
    return f"cu{major}{minor}"


def _arch_from_env(arch_list: str) -> Tuple[str, str]:
    """``'8.0;9.0+PTX'`` -> (the list as given, ``'sm80+sm90'``)."""
    archs = [a for a in re.split(r"[;\s]+", arch_list.strip()) if a]
    sms = []
    for a in archs:
        m = re.fullmatch(r"(\d+)\.(\d+)a?(\+PTX)?", a)
        if not m:
            raise PlanError(f"TORCH_CUDA_ARCH_LIST={arch_list!r}: {a!r} is not an architecture "
                            f"like '9.0' (list them as '8.0;9.0').")
        sms.append(f"sm{m.group(1)}{m.group(2)}")
    return ";".join(archs), "+".join(dict.fromkeys(sms))


def _toolkit_fix(cuda: str, site_packages: str) -> str:
    major = cuda.split(".")[0]
    return (f"Install a CUDA {cuda} toolkit and point CUDA_HOME at it. Either from PyPI into the "
            f"venv (found there automatically): .venv/bin/pip install "
            f"\"cuda-toolkit[nvcc,nvvm,crt,cccl,cudart]=={cuda}.*\" (it lands in "
            f"{site_packages}/nvidia/cu{major}); or NVIDIA's installer / apt package "
            f"cuda-toolkit-{cuda.replace('.', '-')}, then CUDA_HOME=/usr/local/cuda-{cuda} make install. "
            f"To build without GPU ops instead: LSDENSE_MMCV_DEVICE=cpu make install.")


def plan(mmcv_version: str, m: Machine) -> Plan:
    """Decide the mmcv build for machine ``m``.

    Returns:
        A CPU plan when torch has no CUDA or sees no GPU (unless ``device='cuda'``); else a
        CUDA plan for the GPUs' architectures with the nvcc found.

    Raises:
        PlanError: a CUDA build is wanted but torch is CPU-only, no nvcc was found, nvcc's
            CUDA major version differs from torch's, or no architecture is known.
    """
    torch_v = _base_version(m.torch_version)
    prefix = f"mmcv-{mmcv_version}+torch{torch_v}"
    if m.device not in ("auto", "cpu", "cuda"):
        raise PlanError(f"LSDENSE_MMCV_DEVICE={m.device!r}: use auto, cpu or cuda.")
    want_cuda = m.device == "cuda" or (m.device == "auto" and m.torch_cuda and m.capabilities)
    if not want_cuda:
        notes = []
        if m.capabilities and not m.torch_cuda and m.device == "auto":
            notes.append("a GPU is visible but torch is a CPU-only build: mmcv is built for CPU.")
        return Plan(key=f"{prefix}-cpu", device="cpu", notes=notes)
    if not m.torch_cuda:
        raise PlanError(f"LSDENSE_MMCV_DEVICE=cuda but torch {m.torch_version} is a CPU-only "
                        f"build: install the CUDA build of torch (constraints.txt) first.")
    if m.arch_list:
        arch_list, sms = _arch_from_env(m.arch_list)
    elif m.capabilities:
        caps = sorted(set(m.capabilities))
        arch_list = ";".join(f"{a}.{b}" for a, b in caps)
        sms = "+".join(f"sm{a}{b}" for a, b in caps)
    else:
        raise PlanError("LSDENSE_MMCV_DEVICE=cuda but torch sees no GPU: set "
                        "TORCH_CUDA_ARCH_LIST to the target GPUs (e.g. '8.0;9.0').")
    if m.nvcc is None:
        looked = "; ".join(m.candidates) or "CUDA_HOME, PATH, /usr/local/cuda"
        why = "sees a GPU" if m.capabilities else "LSDENSE_MMCV_DEVICE=cuda"
        raise PlanError(f"torch {m.torch_version} is built with CUDA {m.torch_cuda} and {why}, "
                        f"so mmcv's CUDA ops must be compiled, but no nvcc was found "
                        f"(looked in: {looked}). {_toolkit_fix(m.torch_cuda, m.site_packages)}")
    path, release = m.nvcc
    notes = []
    if release.split(".")[0] != m.torch_cuda.split(".")[0]:
        raise PlanError(f"nvcc {path} is CUDA {release} but torch {m.torch_version} is built "
                        f"with CUDA {m.torch_cuda}; the ops must be compiled with the same "
                        f"CUDA major version. {_toolkit_fix(m.torch_cuda, m.site_packages)}")
    if release != m.torch_cuda:  # torch's cpp_extension warns here too and builds
        notes.append(f"nvcc is CUDA {release}, torch's is {m.torch_cuda}: same major version, "
                     f"which CUDA's minor-version compatibility allows.")
    cuda_home = str(Path(path).parent.parent)
    return Plan(key=f"{prefix}-{_cuda_tag(m.torch_cuda)}-{sms}", device="cuda",
                cuda_home=cuda_home, arch_list=arch_list, cpath=m.torch_cuda_include, notes=notes)


# --- reading the real machine ------------------------------------------------------------

def nvcc_release(nvcc: str) -> Optional[str]:
    """``'13.0'`` from ``nvcc --version`` (``... release 13.0, V13.0.88``), None if it fails."""
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"release (\d+\.\d+)", out)
    return m.group(1) if m else None


def find_nvcc(env: Dict[str, str], site_packages: str, torch_cuda: Optional[str],
              system: Sequence[str] = ("/usr/local/cuda",),
              ) -> Tuple[Optional[Tuple[str, str]], List[str]]:
    """The nvcc a CUDA build would use, as ``(path, release)``, and the places looked in.

    Order: ``$CUDA_HOME`` (or ``$CUDA_PATH``) alone when set; else ``system`` toolkits
    (``/usr/local/cuda``), ``nvcc`` on ``PATH``, then a PyPI toolkit in the venv
    (``site-packages/nvidia/cu<major>``, the ``cuda-toolkit`` wheels' layout). A candidate
    counts only as a whole toolkit: ``<home>/bin/nvcc`` beside ``<home>/include/cuda_runtime.h``
    (an ``nvcc`` wrapper script on ``PATH`` does not make its folder a CUDA_HOME).
    """
    home = env.get("CUDA_HOME") or env.get("CUDA_PATH")
    if home:
        places = [str(Path(home) / "bin" / "nvcc")]
    else:
        places = [str(Path(s) / "bin" / "nvcc") for s in system]
        places.append(shutil.which("nvcc", path=env.get("PATH", "")) or "nvcc on PATH")
        if torch_cuda:
            places.append(str(Path(site_packages) / "nvidia" / f"cu{torch_cuda.split('.')[0]}"
                              / "bin" / "nvcc"))
    for p in places:
        if not (os.path.isfile(p) and os.access(p, os.X_OK)):
            continue
        if not (Path(p).parent.parent / "include" / "cuda_runtime.h").is_file():
            continue
        release = nvcc_release(p)
        if release:
            return (p, release), places
    return None, places


def probe(env: Optional[Dict[str, str]] = None) -> Machine:
    """Read this machine: torch's version and CUDA, the visible GPUs, nvcc."""
    import sysconfig

    import torch

    env = dict(os.environ if env is None else env)
    caps = []
    if torch.version.cuda and torch.cuda.is_available():
        caps = [torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())]
    site = sysconfig.get_paths()["purelib"]
    nvcc, places = (None, [])
    device = env.get("LSDENSE_MMCV_DEVICE", "auto") or "auto"
    if device == "cuda" or (device == "auto" and torch.version.cuda and caps):
        nvcc, places = find_nvcc(env, site, torch.version.cuda)
    extra = ""
    if nvcc:
        home = Path(nvcc[0]).parent.parent
        wheel_inc = Path(site) / "nvidia" / f"cu{torch.version.cuda.split('.')[0]}" / "include"
        if not (home / "include" / "cusparse.h").is_file() and (wheel_inc / "cusparse.h").is_file():
            extra = str(wheel_inc)
    return Machine(torch_version=torch.__version__, torch_cuda=torch.version.cuda,
                   capabilities=caps, nvcc=nvcc, candidates=places, device=device,
                   arch_list=env.get("TORCH_CUDA_ARCH_LIST") or None, site_packages=site,
                   torch_cuda_include=extra)


# --- proving the installed ops -------------------------------------------------------------

def check_ops(device: str) -> str:
    """Run mmcv's compiled ``nms`` and ``RoIAlign`` on CPU and, for ``'cuda'``, on the GPU.

    Returns:
        A one-line summary.

    Raises:
        RuntimeError: an op is missing, fails on the device, or disagrees with the CPU.
    """
    import torch
    from mmcv.ops import RoIAlign, nms

    g = torch.Generator().manual_seed(0)
    xy = torch.rand(64, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 10 + torch.rand(64, 2, generator=g) * 30], 1)
    scores = torch.rand(64, generator=g)
    feat = torch.rand(1, 4, 32, 32, generator=g)
    rois = torch.tensor([[0, 1.0, 1.0, 20.0, 24.0], [0, 4.0, 2.0, 30.0, 12.0]])
    align = RoIAlign((7, 7), spatial_scale=1.0, sampling_ratio=2)
    _, keep_cpu = nms(boxes, scores, 0.5)
    pooled_cpu = align(feat, rois)
    if keep_cpu.numel() == 0 or pooled_cpu.shape != (2, 4, 7, 7):
        raise RuntimeError("mmcv.ops on CPU returned nothing sensible")
    done = [f"nms/RoIAlign on cpu ({keep_cpu.numel()} of 64 boxes kept)"]
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("a CUDA check was asked for but torch sees no GPU")
        dev = torch.device("cuda")
        try:
            _, keep = nms(boxes.to(dev), scores.to(dev), 0.5)
            pooled = align.to(dev)(feat.to(dev), rois.to(dev))
            torch.cuda.synchronize()
        except (RuntimeError, NotImplementedError) as err:
            raise RuntimeError(f"mmcv.ops failed on CUDA tensors ({err}); the wheel was not "
                               f"built with CUDA ops for this GPU") from err
        if not torch.equal(keep.cpu().sort().values, keep_cpu.sort().values):
            raise RuntimeError("mmcv nms on CUDA keeps other boxes than on CPU")
        if not torch.allclose(pooled.cpu(), pooled_cpu, atol=1e-5):
            raise RuntimeError("mmcv RoIAlign on CUDA disagrees with CPU")
        done.append(f"same on {torch.cuda.get_device_name(0)}")
    return ", ".join(done)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line (see the module docstring); exit 1 with one message on a :class:`PlanError`."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("plan", help="print MMCV_KEY=... lines for eval")
    pp.add_argument("--mmcv", required=True, help="mmcv version, e.g. 2.1.0")
    pc = sub.add_parser("check", help="run mmcv.ops on cpu, or on cpu and cuda")
    pc.add_argument("device", choices=["cpu", "cuda"])
    args = p.parse_args(argv)
    if args.cmd == "plan":
        try:
            result = plan(args.mmcv, probe())
        except PlanError as err:
            print(f"[install] ERROR: {err}", file=sys.stderr)
            return 1
        for note in result.notes:
            print(f"[install] note: {note}", file=sys.stderr)
        print(result.shell())
        return 0
    try:
        print(f"[install] mmcv.ops ok: {check_ops(args.device)}")
    except (RuntimeError, ImportError) as err:
        print(f"[install] ERROR: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
