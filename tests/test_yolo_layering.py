"""Layering of the Ultralytics adapter: plain data code without Ultralytics, no import cycles,
every ``lsdense.yolo`` module importable on its own."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
YOLO = ROOT / "lsdense" / "yolo"


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                OMP_NUM_THREADS="1", YOLO_OFFLINE="1")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _yolo_modules():
    return sorted(_module_name(p) for p in YOLO.rglob("*.py"))


def test_toy_bdd_data_and_the_bdd100k_converter_do_not_import_ultralytics(tmp_path):
    code = ("import sys\n"
            "from lsdense.toydata.bdd import make_bdd100k\n"
            "import lsdense.bdd100k\n"
            f"d = make_bdd100k({str(tmp_path)!r}, num_train=2, num_val=1, seed=0, size=(32, 48))\n"
            "assert d['multitask_yaml'].is_file() and d['det_yaml'].is_file()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'ultralytics'))\n")
    r = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    assert len(list((tmp_path / "labels/100k/train").glob("*.txt"))) == 2


def _imports(path: Path, name: str):
    """Every lsdense.yolo module that ``path`` imports (module level or inside functions)."""
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    known, out = set(_yolo_modules()), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            # ``from pkg import sub`` imports the submodule; ``from mod import obj`` the module
            cands = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        elif isinstance(node, ast.Import):
            cands = [a.name for a in node.names]
        else:
            continue
        out |= {c for c in cands if c in known and c != name}
    return out


def test_no_import_cycles_in_the_yolo_adapter():
    graph = {_module_name(p): _imports(p, _module_name(p)) for p in YOLO.rglob("*.py")}
    assert graph["lsdense.yolo.multitask.trainer"] >= {"lsdense.yolo.multitask.validator"}
    state = {}

    def visit(m, stack):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n, stack + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_each_yolo_module_imports_on_its_own():
    """One interpreter; before each module every lsdense.yolo module is dropped from sys.modules."""
    code = ("import importlib, sys\n"
            f"for name in {_yolo_modules()!r}:\n"
            "    for k in [k for k in sys.modules if k == 'lsdense.yolo' or k.startswith('lsdense.yolo.')]:\n"
            "        del sys.modules[k]\n"
            "    importlib.import_module(name)\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().endswith("ok")
