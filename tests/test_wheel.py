"""The package works installed, not only from a checkout (issue 10, section 3).

Builds the wheel from a copy of the sources, installs it into a fresh virtual environment
and runs the README's usage examples there from a directory outside the repository: timm
models, a dense backbone, a YOLO model and A-YOLOM from bundled YAMLs by bare name, an mm
config by name through mmengine's ``Config.fromfile`` (its ``_base_`` files resolved inside the
package), and ``tools/swap_backbone.py``, which must find lsdense installed (no
``sys.path.insert``).

The fresh environment reuses the installed stack instead of reinstalling it: copying torch,
mmcv, ultralytics, ... from pip's cache would take minutes and install the very same files.
``venv`` makes it without pip (it is created from the base interpreter, so it sees neither
the stack nor the checkout), a ``.pth`` file then appends the stack's site-packages to its
``sys.path``. A ``.pth`` only adds that folder as a path: the ``.pth`` files inside it, the
editable-install hook of the checkout's lsdense among them, are not run, so the only lsdense
the new environment can import is the wheel's (asserted through ``lsdense.__file__``). pip
(from the stack) installs the wheel into the new environment with ``--ignore-installed``,
so it neither skips the wheel nor touches the stack's lsdense metadata.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("ultralytics", reason="the README's Ultralytics examples need lsdense[yolo]")
for _mod in ("setuptools", "wheel"):  # --no-build-isolation builds with the stack's backend
    pytest.importorskip(_mod, reason=f"building the wheel offline needs {_mod} in this environment")

# The README's usage examples, run in the fresh environment (cwd outside the repository).
_EXAMPLES = r"""
import json, runpy, sys
import torch
import timm, lsdense  # importing lsdense registers the models

out = {"lsdense": lsdense.__file__}
model = timm.create_model("lsnet_t", num_classes=1000)
feats = timm.create_model("lolvit_s", features_only=True, out_indices=(2, 3, 4))
out["timm"] = [feats.feature_info.channels(), feats.feature_info.reduction(), model.num_classes]

from lsdense.models import create_backbone
backbone = create_backbone("lsnet_t", out_indices=(0, 1, 2, 3), frozen_stages=0,
                           norm_eval=True).eval()
images = torch.randn(1, 3, 128, 160)
with torch.no_grad():
    maps = backbone(images)
    backbone.fuse()
    fused = backbone(images)
out["backbone"] = [[list(m.shape) for m in maps], backbone.out_channels, backbone.out_strides,
                   max((a - b).abs().max().item() for a, b in zip(maps, fused))]

import lsdense.yolo  # registers the modules with Ultralytics
from lsdense.cfg import yolo_yaml
from lsdense.yolo import AYOLOM
from ultralytics import YOLO
det = YOLO(yolo_yaml("yolov8n-lsnet_t.yaml"))
mt = AYOLOM("ayolom-n.yaml")
mt.model.eval()
with torch.no_grad():
    seg = mt.model(torch.zeros(1, 3, 64, 64))[1]
out["yolo"] = [det.model.yaml["yaml_file"], mt.model.yaml["yaml_file"],
               [list(s.shape) for s in seg]]

from mmengine.config import Config
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from lsdense.cfg import list_mm_configs, mm_config
det_cfg = Config.fromfile(mm_config("retinanet_lsnet_t_coco.py"))  # imports lsdense.mmdet
seg_cfg = Config.fromfile(mm_config("quickstart/fpn_lsnet_t_toyade20k"))
out["mm"] = [mm_config("retinanet_lsnet_t_coco.py"), len(list_mm_configs()),
             det_cfg.model.backbone.type, det_cfg.optim_wrapper.constructor,
             det_cfg.optim_wrapper.optimizer.lr, det_cfg.train_cfg.max_epochs,
             det_cfg.model.bbox_head.type, seg_cfg.train_cfg.max_iters,
             seg_cfg.optim_wrapper.paramwise_cfg.norm_decay_mult,
             OPTIM_WRAPPER_CONSTRUCTORS.get(det_cfg.optim_wrapper.constructor).__module__]

tool = runpy.run_path(sys.argv[1], run_name="lsdense_tool")["main"]
out["swap_rc"] = tool(["yolov8n.yaml", "--backbone", "lolvit_s", "-o", "yolov8n-lolvit_s.yaml"])
print("RESULT " + json.dumps(out))
"""


def _copy_sources(dst: Path) -> None:
    """What the wheel is built from: pyproject, README and the package (no build dirs or caches)."""
    dst.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dst / name)
    shutil.copytree(ROOT / "lsdense", dst / "lsdense", symlinks=True,  # cfg/mm/yolo -> ../yolo
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))


def _fresh_env(path: Path) -> Path:
    """A venv without pip whose ``sys.path`` ends with the running stack's site-packages."""
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(path)
    py = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stack = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(site) / "lsdense-test-stack.pth").write_text("".join(f"{p}\n" for p in stack))
    return py


def test_wheel_installs_and_runs_readme_examples(tmp_path):
    """The wheel carries every bundled YAML; installed, the README examples run outside the repo."""
    src, dist, env_dir, work = (tmp_path / n for n in ("src", "dist", "env", "work"))
    _copy_sources(src)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--no-index", "-q", "-w", str(dist), str(src)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    (whl,) = dist.glob("lsdense-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    bundled = sorted(p.name for p in (ROOT / "lsdense" / "cfg" / "yolo").glob("*.yaml"))
    assert "ayolom-n.yaml" in bundled and "yolov8n-lsnet_t.yaml" in bundled
    assert [n for n in bundled if f"lsdense/cfg/yolo/{n}" not in names] == []
    assert any(n.endswith("entry_points.txt") for n in names)
    from lsdense.cfg import list_mm_configs

    bases = [str(p.relative_to(ROOT / "lsdense" / "cfg" / "mm"))
             for p in (ROOT / "lsdense" / "cfg" / "mm" / "_base_").glob("*/*.py")]
    mm = [*list_mm_configs(), *bases]
    assert len(bases) >= 6 and [n for n in mm if f"lsdense/cfg/mm/{n}" not in names] == []
    assert not [n for n in names if n.startswith(("lsdense/cfg/mm/real/", "lsdense/cfg/mm/yolo/"))]

    py = _fresh_env(env_dir)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", YOLO_OFFLINE="1", YOLO_AUTOINSTALL="False",
               YOLO_CONFIG_DIR=str(tmp_path / "yolo-cfg"), PYTHONDONTWRITEBYTECODE="1")
    inst = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
                           "--no-compile", "-q", str(whl)], capture_output=True, text=True, env=env)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    assert (env_dir / "bin" / "lsdense-yolo").is_file() or os.name == "nt"  # the console script

    work.mkdir()
    res = subprocess.run([str(py), "-c", _EXAMPLES, str(ROOT / "tools" / "swap_backbone.py")],
                         cwd=work, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = json.loads(res.stdout.split("RESULT ", 1)[1])

    installed = Path(out["lsdense"]).resolve()
    assert installed.is_relative_to(env_dir.resolve()), f"picked up {installed}, not the wheel"
    assert not installed.is_relative_to(ROOT)
    pkg = installed.parent
    channels, reduction, num_classes = out["timm"]
    assert num_classes == 1000 and reduction == [8, 16, 32]  # LOLViT levels 2-4: strides 8-32
    assert len(channels) == 3
    shapes, out_channels, out_strides, fuse_err = out["backbone"]
    assert out_channels == [64, 128, 256, 384] and out_strides == [8, 16, 32, 64]  # README
    assert shapes == [[1, c, -(-128 // s), -(-160 // s)] for c, s in zip(out_channels, out_strides)]
    assert fuse_err < 1e-3
    det_yaml, mt_yaml, seg_shapes = out["yolo"]
    assert Path(det_yaml) == pkg / "cfg" / "yolo" / "yolov8n-lsnet_t.yaml"
    assert Path(mt_yaml) == pkg / "cfg" / "yolo" / "ayolom-n.yaml"
    assert len(seg_shapes) == 2 and all(s[0] == 1 and s[2:] == [64, 64] for s in seg_shapes)
    assert out["swap_rc"] in (0, None) and (work / "yolov8n-lolvit_s.yaml").is_file()
    mm_path, n_mm, *mm_cfg, constructor_module = out["mm"]
    assert Path(mm_path) == pkg / "cfg" / "mm" / "retinanet_lsnet_t_coco.py"
    assert n_mm == len(mm) - len(bases)
    # the leaf, its schedule _base_ in the package and mmdet's bases, merged
    assert mm_cfg == ["LSNetBackbone", "NoWeightDecayOptimWrapperConstructor", 1e-4, 12,
                      "RetinaHead", 300, 0.0]
    assert constructor_module == "lsdense.mm.optim"


def test_bundled_yaml_resolution(tmp_path, monkeypatch):
    """``yolo_yaml``: an existing file wins, else a bundled name (bare or checkout spelling) from
    any directory, else the name passes through unchanged for Ultralytics to resolve."""
    from lsdense.cfg import YOLO_CFG_DIR, list_yolo_yamls, yolo_yaml

    assert (ROOT / "configs" / "yolo").resolve() == YOLO_CFG_DIR  # the checkout's symlink
    assert set(list_yolo_yamls()) == {p.name for p in (ROOT / "configs" / "yolo").glob("*.yaml")}
    assert {"ayolom-n.yaml", "ayolom-s.yaml", "yolov8n-lolvit_s.yaml", "lolvit_s-coco.yaml"} <= \
        set(list_yolo_yamls())
    monkeypatch.chdir(tmp_path)
    bundled = str(YOLO_CFG_DIR / "ayolom-n.yaml")
    assert yolo_yaml("ayolom-n.yaml") == bundled
    assert yolo_yaml("configs/yolo/ayolom-n.yaml") == bundled
    assert yolo_yaml(Path("ayolom-n.yaml")) == bundled
    for passthrough in ("yolov8n.yaml", "other/ayolom-n.yaml", "missing.yaml", "best.pt"):
        assert yolo_yaml(passthrough) == passthrough
    d = {"backbone": [], "head": []}
    assert yolo_yaml(d) is d
    (tmp_path / "ayolom-n.yaml").write_text("nc: 1\n")  # a local file of the same name wins
    assert yolo_yaml("ayolom-n.yaml") == "ayolom-n.yaml"


def test_bundled_mm_config_resolution(tmp_path, monkeypatch):
    """``mm_config``: an existing file wins, else a bundled config (bare, without ``.py``, or in
    the checkout spelling) from any directory; configs/real is not bundled."""
    from lsdense.cfg import MM_CFG_DIR, list_mm_configs, mm_config

    assert (ROOT / "configs").resolve() == MM_CFG_DIR  # the checkout's symlink
    names = list_mm_configs()
    assert "retinanet_lsnet_t_coco.py" in names and "quickstart/fpn_lsnet_t_toyade20k.py" in names
    assert len(names) == len(list((ROOT / "configs").glob("*.py"))) + \
        len(list((ROOT / "configs" / "quickstart").glob("*.py")))
    monkeypatch.chdir(tmp_path)
    bundled = str(MM_CFG_DIR / "quickstart" / "retinanet_lsnet_t_toycoco.py")
    for spelling in ("quickstart/retinanet_lsnet_t_toycoco.py", "quickstart/retinanet_lsnet_t_toycoco",
                     "configs/quickstart/retinanet_lsnet_t_toycoco.py",
                     Path("quickstart/retinanet_lsnet_t_toycoco.py")):
        assert mm_config(spelling) == bundled
    for passthrough in ("real/retinanet_lsnet_t_cocoreal.py", "missing.py", "other/fpn_lsnet_t_ade20k.py"):
        assert mm_config(passthrough) == passthrough
    (tmp_path / "retinanet_lsnet_t_coco.py").write_text("x = 1\n")  # a local file wins
    assert mm_config("retinanet_lsnet_t_coco.py") == "retinanet_lsnet_t_coco.py"
