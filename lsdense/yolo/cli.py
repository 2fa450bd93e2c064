"""``lsdense-yolo``: the Ultralytics CLI with the lsdense modules registered.

    lsdense-yolo detect train model=configs/yolo/yolov8n-lolvit_s.yaml data=VOC.yaml
    lsdense-yolo multitask train model=configs/yolo/ayolom-n-lolvit_s.yaml data=bdd.yaml

``detect``/``segment``/... commands are passed unchanged to Ultralytics'
``entrypoint``; ``multitask`` (A-YOLOM) runs ``train``/``val``/``predict`` through
:class:`lsdense.yolo.multitask.AYOLOM`. :func:`run` takes the argument list; :func:`main`
is the console script (``sys.argv``).
"""
from __future__ import annotations

import sys
from typing import List, Optional

from .register import check_model_yaml
from .swap import load_model_yaml

__all__ = ["main", "run"]

_MODES = ("train", "val", "predict")


def _multitask(args: List[str]):
    from .multitask import AYOLOM
    from .train import parse_overrides

    mode = next((a for a in args if a in _MODES), None)
    if mode is None:
        raise ValueError(f"lsdense-yolo multitask needs a mode: one of {', '.join(_MODES)}.")
    kw = parse_overrides([a for a in args if a != mode])
    if "model" not in kw:
        raise ValueError("lsdense-yolo multitask: pass model=<A-YOLOM .yaml or .pt>.")
    model = AYOLOM(str(kw.pop("model")))
    return getattr(model, mode)(**kw)


def run(args: List[str]):
    """Run the Ultralytics CLI (or A-YOLOM for ``multitask``) on ``args`` (without the program name),
    the lsdense modules registered; returns what Ultralytics returns (metrics for ``val``)."""
    from lsdense.cfg import yolo_yaml

    args = list(args)
    # model=<bundled name> (e.g. yolov8n-lolvit_s.yaml) works from any directory
    args = [f"model={yolo_yaml(a[6:])}" if a.startswith("model=") else a for a in args]
    if args and args[0] == "multitask":
        return _multitask(args[1:])
    for a in args:  # fail early, with the lsdense message, on a bad model YAML
        if a.startswith("model=") and a.endswith((".yaml", ".yml")):
            check_model_yaml(load_model_yaml(a.split("=", 1)[1]))
    data = next((a[5:] for a in args if a.startswith("data=")), None)
    if "train" in args and data:  # the data pre-flight of tools/train.py: all problems at once
        from .checks import preflight
        from .train import guess_task

        model = next((a[6:] for a in args if a.startswith("model=")), "")
        task = next((a[5:] for a in args if a.startswith("task=")), None) or \
            next((a for a in args if a in ("detect", "segment", "pose", "obb")), None) or \
            (guess_task(model) if model else None) or "detect"
        if task in ("detect", "segment", "pose", "obb"):
            preflight(data, task)
    from ultralytics.cfg import entrypoint

    return entrypoint(" ".join(["lsdense-yolo", *args]))


def main(argv: Optional[List[str]] = None) -> int:
    """Console script ``lsdense-yolo``: :func:`run` on ``sys.argv[1:]`` (or ``argv``).

    Returns the exit status (the console-script wrapper passes it to ``sys.exit``): 0, or 2
    with one ``error:`` line for a bad command line, config or argument (Ultralytics raises
    SyntaxError for unknown keys; ours raise ValueError).
    """
    try:
        run(sys.argv[1:] if argv is None else argv)
    except (SyntaxError, ValueError) as err:
        print(f"lsdense-yolo: error: {str(err).strip()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    main()
