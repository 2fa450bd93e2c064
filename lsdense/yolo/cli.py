"""``lsdense-yolo``: the Ultralytics CLI with the lsdense modules registered.

    lsdense-yolo detect train model=configs/yolo/yolov8n-lolvit_s.yaml data=VOC.yaml
    lsdense-yolo multitask train model=configs/yolo/ayolom-n-lolvit_s.yaml data=bdd.yaml

``detect``/``segment``/... commands are passed unchanged to Ultralytics'
``entrypoint``; ``multitask`` (A-YOLOM) runs ``train``/``val``/``predict`` through
:class:`lsdense.yolo.multitask.AYOLOM`.
"""
from __future__ import annotations

import sys
from typing import List, Optional

__all__ = ["main"]

_MODES = ("train", "val", "predict")


def _multitask(args: List[str]):
    from .multitask import AYOLOM
    from .train import _parse_overrides

    mode = next((a for a in args if a in _MODES), None)
    if mode is None:
        raise ValueError(f"lsdense-yolo multitask needs a mode: one of {', '.join(_MODES)}.")
    kw = _parse_overrides([a for a in args if a != mode])
    if "model" not in kw:
        raise ValueError("lsdense-yolo multitask: pass model=<A-YOLOM .yaml or .pt>.")
    model = AYOLOM(str(kw.pop("model")))
    return getattr(model, mode)(**kw)


def main(argv: Optional[List[str]] = None):
    """Register the lsdense modules, then run the Ultralytics CLI (or A-YOLOM for ``multitask``)."""
    import lsdense.yolo  # noqa: F401  (registers the modules)
    from lsdense.cfg import yolo_yaml

    args = list(sys.argv[1:] if argv is None else argv)
    # model=<bundled name> (e.g. yolov8n-lolvit_s.yaml) works from any directory
    args = [f"model={yolo_yaml(a[6:])}" if a.startswith("model=") else a for a in args]
    if args and args[0] == "multitask":
        return _multitask(args[1:])
    for a in args:  # fail early, with the lsdense message, on a bad model YAML
        if a.startswith("model=") and a.endswith((".yaml", ".yml")):
            from .swap import load_model_yaml
            from .register import check_model_yaml

            check_model_yaml(load_model_yaml(a.split("=", 1)[1]))
    from ultralytics.cfg import entrypoint

    return entrypoint(" ".join(["lsdense-yolo", *args]))


if __name__ == "__main__":  # pragma: no cover
    main()
