#!/usr/bin/env python
"""Run one of timm's scripts (``train.py``, ``validate.py``, ``benchmark.py``, ``inference.py``,
``onnx_export.py`` of the timm repository) with the lsdense models registered.

timm's scripts build models by name (``--model lsnet_t``) from timm's registry, and
have no flag that imports a plugin module (timm 1.0.31), so the lsdense models must be
registered (``import lsdense``) in the same process first. This wrapper does that and
then runs the script as ``__main__`` (``runpy.run_path``), with the remaining
arguments as its own::

    python tools/timm_run.py path/to/pytorch-image-models/validate.py \\
        --model lsnet_t --checkpoint model.safetensors --data-dir imagenet/ -b 64

The scripts are not part of the timm wheel: clone (or download) the timm repository
of the version you run (``python -c "import timm; print(timm.__version__)"``).

Exit status: the script's own; 2 with one line when the script path is not a file.
"""
import runpy
import sys
from pathlib import Path

USAGE = ("usage: python tools/timm_run.py SCRIPT.py [script arguments ...]  (SCRIPT: timm's "
         "train.py, validate.py, benchmark.py, inference.py or onnx_export.py)")


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0 if argv else 2)
    script = Path(argv[0])
    if not script.is_file():
        print(f"timm_run: {script} is not a file; give the path of one of timm's scripts "
              f"(they are in the timm repository, not in its wheel).", file=sys.stderr)
        raise SystemExit(2)
    import lsdense  # noqa: F401  (registers the lsdense models with timm)

    sys.argv = [str(script)] + argv[1:]
    sys.path.insert(0, str(script.resolve().parent))  # as `python SCRIPT` would
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
