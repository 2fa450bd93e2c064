"""Make Ultralytics find, check and safely load the lsdense modules.

``register()`` (run by ``import lsdense.yolo``; idempotent):

1. puts every lsdense YAML module into ``ultralytics.nn.tasks`` globals, where
   ``parse_model`` looks module names up;
2. allow-lists the classes a trained lsdense ``.pt`` pickles with
   ``torch.serialization.add_safe_globals``, so ``ULTRALYTICS_SAFE_LOAD=1``
   (``weights_only`` loading) accepts them;
3. adds the ``multitask`` task (A-YOLOM) to Ultralytics' per-task defaults
   (``TASK2DATA``, ``TASK2METRIC``), which ``Model.train`` looks up;
4. wraps ``parse_model`` with :func:`check_model_yaml`, so that an unknown module
   or arch and wrong ``Index`` channel counts fail with a message that names
   the fix instead of a ``KeyError`` or a convolution shape error; the wrapper
   also completes each backbone row (:func:`fill_backbone_rows`): the model's
   input channels reach the backbone as ``in_chans``, and a model rebuilt from a
   trained checkpoint's YAML does not read the row's backbone weights file;
5. wraps ``BaseModel.fuse`` (:func:`_fusing`): Ultralytics' ``fuse()``, which its
   predictor, validator and exporter call through ``AutoBackend``, folds only its own
   ``Conv``/``RepConv`` modules; the wrapper folds the lsdense backbones' Conv-BN pairs
   and reparameterised branches as well (their ``fuse()``), before Ultralytics' own;
6. wraps ``Exporter.__call__`` (:func:`_exporting`): every export format gets a copy of
   the model prepared by :func:`lsdense.models.forms.prepare_export` (backbones fused,
   custom operators in their export form: rank <= 4 real ops), so ONNX, TorchScript,
   OpenVINO, ncnn and CoreML artifacts hold no op their runtime lacks; the caller's model is
   left as it was; the TensorFlow / LiteRT exporters refuse LiSA models before converting;
7. adds an ``on_train_start`` callback to Ultralytics' default callbacks that
   marks the YAML of the model being trained with ``lsdense_trained: true``
   (:func:`mark_trained`); checkpoints carry the mark in ``model.yaml``;
8. wraps ``ultralytics.utils.torch_utils.get_flops`` (:func:`_counting_flops`), which
   ``model.info()`` and the training logs call: for a model holding lsdense modules the
   GFLOPs are counted at the real input size by :func:`lsdense.models.count_flops`
   (``torch.utils.flop_counter``, custom operators in their reference form), not by thop
   on a small image scaled up, which is wrong for attention (LOLViT-S + YOLOv8n head 15.48
   instead of 10.64 at 640; LiSANet-S 68.97 instead of 77.14); other models keep thop;
9. runs go under the working directory (:func:`_runs_under_working_directory`) when
   Ultralytics took the git checkout that holds its *installation* (a virtual environment
   inside a project's checkout) for an Ultralytics checkout.

Why the mark: to fine-tune or resume a ``.pt``, Ultralytics rebuilds the model
from the checkpoint's ``model.yaml`` (``trainer.get_model(cfg=model.yaml)``) and
then copies the checkpoint's weights in (``model.load``). The backbone weights a
row names only initialise a fresh model; the trained weights are in the ``.pt``,
so the rebuild must not need that file. A fresh build (``YOLO('x.yaml')``, where
Ultralytics re-reads the file) has no mark and loads the file.
"""
from __future__ import annotations

import functools
import importlib
import inspect
from copy import deepcopy
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn as nn

from lsdense.models import get_variant
from lsdense.models.forms import prepare_export

from . import modules as M

__all__ = ["register", "check_model_yaml", "fill_backbone_rows", "mark_trained", "lsdense_modules",
           "backbone_channels", "lsdense_gflops", "BACKBONE_ROW_ARGS", "TRAINED_KEY"]

BACKBONE_ROW_ARGS = ("arch", "pretrained", "out_indices", "in_chans")
TRAINED_KEY = "lsdense_trained"


def lsdense_modules() -> Dict[str, type]:
    """Every module name a YAML may use after ``import lsdense.yolo``."""
    return {**M.BACKBONE_MODULES, "AGate": M.AGate, "AdaptiveConcat": M.AdaptiveConcat, **M.SEG_HEADS}


@functools.lru_cache(maxsize=None)
def _backbone_info(family_cls: str, arch: str
                   ) -> Tuple[Tuple[Tuple[int, int], ...], Tuple[int, ...]]:
    """(channels, stride) of every level of a YAML backbone row, and the levels it returns
    by default (all, except LiSANet-I: its last block). From the registry: nothing is built."""
    cls = M.BACKBONE_MODULES[family_cls]
    variant = get_variant(M._resolve_variant(cls.family, arch))
    return tuple(zip(variant.channels, variant.strides)), variant.out_indices


def backbone_channels(module: str, arch: str, out_indices=None) -> List[int]:
    """Channels a backbone row returns, in ``Index`` order."""
    info, default = _backbone_info(module, arch)
    idx = default if out_indices is None else [i % len(info) for i in out_indices]
    return [info[i][0] for i in sorted(idx)]


_NONE = ("None", "null", "none", "")


def _unquote(a):
    return a.strip("'\"") if isinstance(a, str) else a


def check_model_yaml(d: dict) -> None:
    """Raise for unknown modules/archs, bad backbone rows and ``Index`` channels that do not match.

    Args:
        d: a model YAML dict (``backbone`` + ``head`` rows of ``[from, n, module, args]``).

    Raises:
        ValueError: unknown module or arch, more backbone arguments than
            ``[arch, pretrained, out_indices, in_chans]``, ``Index`` channels or index wrong.
        FileNotFoundError: a backbone row names a weights file that does not exist (not
            checked for the YAML of a trained checkpoint, see :data:`TRAINED_KEY`).
    """
    import ultralytics.nn.tasks as tasks

    rows = list(d.get("backbone", [])) + list(d.get("head", []))
    known = vars(tasks)
    outs: Dict[int, List[int]] = {}
    for i, (f, _, m, args) in enumerate(rows):
        if not isinstance(m, str) or m.startswith(("nn.", "torchvision.ops.")):
            continue
        if m in ("AdaptiveConcat", *M.SEG_HEADS):  # MultiTaskModel stands these in before parsing
            raise ValueError(f"Model YAML row {i}: {m} needs the multi-task model, which fills in its "
                             f"input channels: build with lsdense.yolo.AYOLOM('<yaml>'), not YOLO().")
        if m not in known:
            raise ValueError(
                f"Model YAML row {i} names unknown module {m!r}. lsdense modules: "
                f"{', '.join(sorted(lsdense_modules()))} (available after `import lsdense.yolo`); "
                f"every other name must be an Ultralytics module from ultralytics.nn.tasks.")
        if m in M.BACKBONE_MODULES:
            if not args:
                raise ValueError(f"Model YAML row {i}: {m} needs an arch argument, e.g. [{m}, [s]].")
            if len(args) > len(BACKBONE_ROW_ARGS):
                raise ValueError(
                    f"Model YAML row {i}: {m} takes at most {len(BACKBONE_ROW_ARGS)} arguments "
                    f"[{', '.join(BACKBONE_ROW_ARGS)}], got {len(args)}: {args}.")
            kw = {k: (None if _unquote(a) in _NONE else _unquote(a))
                  for k, a in zip(BACKBONE_ROW_ARGS, args)}
            outs[i] = backbone_channels(m, kw["arch"], kw.get("out_indices"))
            weights = kw.get("pretrained")
            if weights is not None and not d.get(TRAINED_KEY) and "://" not in str(weights) \
                    and not Path(str(weights)).is_file():
                raise FileNotFoundError(
                    f"Model YAML row {i}: {m} names backbone weights {str(weights)!r}, which do not "
                    f"exist (relative paths are resolved against the working directory "
                    f"{Path.cwd()}). Fix the path, or write null to start from random weights.")
        elif m == "Index" and isinstance(f, int):
            src = f if f >= 0 else i + f
            if src in outs:
                c2, index = args[0], (args[1] if len(args) > 1 else 0)
                chans = outs[src]
                if not -len(chans) <= index < len(chans):
                    raise ValueError(
                        f"Model YAML row {i}: Index {index} is out of range; the backbone at row "
                        f"{src} returns {len(chans)} maps with channels {chans}.")
                if c2 != chans[index]:
                    raise ValueError(
                        f"Model YAML row {i}: Index declares {c2} channels for output {index} of the "
                        f"backbone at row {src}, which has {chans[index]} channels. Write "
                        f"[{src}, 1, Index, [{chans[index]}, {index}]] (backbone channels: {chans}).")


# the modules whose nn.Module classes an lsdense Ultralytics model holds (the backbones, their
# fast and export forms, the YOLO rows and the A-YOLOM model), and the timm layers they use
PICKLED_MODULES = ("lsdense.models.layers", "lsdense.models.ska", "lsdense.models.lisa",
                   "lsdense.models.lsnet", "lsdense.models.lolvit", "lsdense.models.lisanet",
                   "lsdense.models.forms", "lsdense.yolo.modules", "lsdense.yolo.multitask.model")
PICKLED_TIMM_LAYERS = ("DropPath", "Mlp", "SqueezeExcite", "LayerNorm2d", "Sigmoid")  # Sigmoid: in SqueezeExcite


def _lsdense_classes() -> List[type]:
    """Classes an lsdense Ultralytics checkpoint may pickle (for weights_only): the nn.Module
    classes defined in :data:`PICKLED_MODULES`, :data:`PICKLED_TIMM_LAYERS`, and the (always
    empty when pickled) eval-mode cache the backbones hold."""
    import timm.layers

    from lsdense.models.layers import EvalCache

    found = []
    for name in PICKLED_MODULES:
        mod = importlib.import_module(name)
        found += [c for c in vars(mod).values() if inspect.isclass(c)
                  and issubclass(c, nn.Module) and c.__module__ == name]
    return found + [getattr(timm.layers, n) for n in PICKLED_TIMM_LAYERS] + [EvalCache]


def _quote_backbone_strings(d: dict) -> None:
    """Quote the string arguments of backbone rows (arch, checkpoint path).

    ``parse_model`` replaces a string argument that names one of its local
    variables (``'t'``, ``'n'``) by that variable and ``literal_eval``s the rest,
    which fails on a path; a quoted string survives both as itself.
    """
    for sec in ("backbone", "head"):
        for row in d.get(sec, []):
            if row[2] in M.BACKBONE_MODULES:
                row[3] = [repr(a) if isinstance(a, str) and a[:1] not in "'\"" else a for a in row[3]]


def _probe_input_channels(d: dict, rows: list, i: int, ch: int, parse_model: Callable) -> int:
    """Channels entering row ``i`` (not the first row): build rows ``0..i-1`` and run them once."""
    f = rows[i][0]
    if not isinstance(f, int):
        raise ValueError(f"Model YAML row {i}: {rows[i][2]} takes one input map; its 'from' is {f!r}.")
    prefix = deepcopy(rows[:i])
    for row in prefix:  # no weights are needed to count channels
        if row[2] in M.BACKBONE_MODULES and len(row[3]) > 1:
            row[3][1] = None
    layers, _ = parse_model(dict(d, backbone=prefix, head=[]), ch, False)
    ys = M.run_layers(layers, torch.zeros(1, ch, 256, 256))
    src = ys[f if f >= 0 else i + f]
    if not isinstance(src, torch.Tensor):
        raise ValueError(f"Model YAML row {i}: {rows[i][2]} needs one image-like map as input, but row "
                         f"{f} returns {type(src).__name__}.")
    return int(src.shape[1])


def fill_backbone_rows(d: dict, ch: int, parse_model: Callable) -> None:
    """Complete the backbone rows of a model YAML dict in place, before ``parse_model`` builds it.

    * ``in_chans``: the channels entering the row (the model's ``ch`` for row 0, which
      Ultralytics takes from the data YAML's ``channels``), written as the 4th argument.
      Ultralytics hands input channels only to its own modules (``c1 = ch[f]`` in
      ``parse_model``); rows of plugin modules get their YAML arguments only.
    * ``pretrained``: cleared when ``d`` is the YAML of a trained checkpoint
      (``lsdense_trained``, see :func:`mark_trained`): the rebuilt model gets the
      checkpoint's weights next, so the file named in the row is not read.

    Raises:
        ValueError: a row declares an ``in_chans`` different from the channels it receives.
    """
    from ultralytics.utils import LOGGER

    rows = list(d.get("backbone", [])) + list(d.get("head", []))
    for i, row in enumerate(rows):
        if row[2] not in M.BACKBONE_MODULES:
            continue
        args = list(row[3]) + [None] * (3 - len(row[3]))
        c_in = int(ch) if i == 0 else _probe_input_channels(d, rows, i, int(ch), parse_model)
        declared = _unquote(args[3]) if len(args) > 3 else None
        if declared not in (None, *_NONE) and declared != c_in:
            raise ValueError(
                f"Model YAML row {i}: {row[2]} declares in_chans={declared!r}, but its input has "
                f"{c_in} channels (the model's ch, set from the data YAML's 'channels'). Drop the 4th "
                f"argument: it is filled in from the model's input.")
        for k in (1, 2):  # 'None' as stock Ultralytics rows write it (e.g. [None, 2, nearest])
            if isinstance(args[k], str) and _unquote(args[k]) in _NONE:
                args[k] = None
        if d.get(TRAINED_KEY) and args[1] is not None:
            LOGGER.info(f"lsdense: row {i} {row[2]}: backbone weights {_unquote(args[1])!r} are not read; "
                        f"this is the YAML of a trained checkpoint, whose weights are loaded next.")
            args[1] = None
        row[3] = args[:3] + [c_in]


def mark_trained(trainer) -> None:
    """``on_train_start`` callback: mark the YAML of a model with lsdense backbone rows as trained.

    Sets ``model.yaml['lsdense_trained'] = True`` on the model being trained and its EMA
    copy (the one Ultralytics saves), so a rebuild from a saved checkpoint's YAML does
    not read the backbone weights file a row names (see :func:`fill_backbone_rows`).
    """
    from ultralytics.utils.torch_utils import unwrap_model

    for model in (unwrap_model(trainer.model), getattr(getattr(trainer, "ema", None), "ema", None)):
        y = getattr(model, "yaml", None)
        if isinstance(y, dict) and any(r[2] in M.BACKBONE_MODULES
                                       for r in list(y.get("backbone", [])) + list(y.get("head", []))):
            y[TRAINED_KEY] = True


def _checked(parse_model):
    @functools.wraps(parse_model)
    def parse_model_checked(d, ch, verbose=True):
        check_model_yaml(d)
        _quote_backbone_strings(d)
        fill_backbone_rows(d, ch, parse_model)
        return parse_model(d, ch, verbose)

    parse_model_checked.__lsdense_wrapped__ = parse_model
    return parse_model_checked


def _fusing(fuse: Callable) -> Callable:
    """``BaseModel.fuse`` that first folds every lsdense backbone (in place, eval mode)."""
    @functools.wraps(fuse)
    def fuse_with_lsdense(self, *args, **kwargs):
        for m in self.modules():
            if isinstance(m, M.LSDenseBackbone):
                m.fuse()
        return fuse(self, *args, **kwargs)
    fuse_with_lsdense.__lsdense_wrapped__ = True
    return fuse_with_lsdense


def _exporting(call: Callable) -> Callable:
    """``Exporter.__call__`` that exports an export-form copy of a model holding lsdense
    backbones (:func:`lsdense.models.forms.prepare_export`); other models pass unchanged."""
    @functools.wraps(call)
    def export_with_lsdense(self, model=None, *args, **kwargs):
        if isinstance(model, nn.Module) and any(isinstance(m, M.LSDenseBackbone)
                                                for m in model.modules()):
            model = prepare_export(deepcopy(model))
        return call(self, model, *args, **kwargs)
    export_with_lsdense.__lsdense_wrapped__ = True
    return export_with_lsdense


# Ultralytics' exporters that go through TensorFlow or LiteRT: every format name that reaches
# them (tflite, tfjs, saved_model, pb, edgetpu, their near-misses) is normalised before
TF_EXPORTERS = ("export_litert", "export_saved_model")


def _refusing_lisa(export: Callable) -> Callable:
    """An Ultralytics TensorFlow/LiteRT exporter that stops, before converting, for a model
    holding a LiSA-family backbone (measured: docs/deploy.md, 'Not done yet')."""
    @functools.wraps(export)
    def export_or_refuse(self, *args, **kwargs):
        lisa = sorted({m.variant for m in self.model.modules() if isinstance(m, M.LSDenseBackbone)
                       and m.family in ("lisanet", "hylisanet")})
        if lisa:
            fmt = repr(self.args.format) + (" (Ultralytics' name for tflite and tfjs)"
                                            if self.args.format == "litert" else "")
            raise ValueError(
                f"format={fmt} is not supported for {', '.join(lisa)}: the "
                f"TensorFlow converters take 11 to more than 15 minutes per LiSA block and the "
                f"result does not run (its GELU becomes the Select-TF op FlexErf; docs/deploy.md, "
                f"'Not done yet'). Export format='onnx', 'openvino' or 'ncnn' instead.")
        return export(self, *args, **kwargs)
    export_or_refuse.__lsdense_wrapped__ = True
    return export_or_refuse


_GFLOPS_CACHE: Dict[Tuple[str, int, int, int], float] = {}


def lsdense_gflops(model: nn.Module, imgsz=640) -> float:
    """GFLOPs of one forward at ``imgsz`` (int or (h, w)), 2 FLOPs per multiply-add, as
    Ultralytics reports them, counted by :func:`lsdense.models.count_flops` on a copy of
    the model (eval mode, float32, on the model's device, one zero image of the real size).

    The count depends on the architecture and the size only, so it is kept per model YAML
    (``model.yaml``, which holds ``nc`` and ``ch``) and size: ``info()`` and the training
    log's ``model/GFLOPs`` count once.
    """
    from lsdense.models import count_flops

    h, w = (imgsz, imgsz) if isinstance(imgsz, (int, float)) else tuple(imgsz)[:2]
    ch = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    y = getattr(model, "yaml", None)
    key = (repr(y), ch, int(h), int(w)) if isinstance(y, dict) else None
    if key is None or key not in _GFLOPS_CACHE:
        device = next(model.parameters()).device
        net = deepcopy(model).float().eval()
        flops = count_flops(net, torch.zeros(1, ch, int(h), int(w), device=device)) / 1e9
        if key is None:
            return flops
        _GFLOPS_CACHE[key] = flops
    return _GFLOPS_CACHE[key]


def _counting_flops(get_flops: Callable) -> Callable:
    """``get_flops`` that counts models holding lsdense modules with :func:`lsdense_gflops`."""
    @functools.wraps(get_flops)
    def get_flops_lsdense(model, imgsz=640):
        from ultralytics.utils.torch_utils import unwrap_model

        net = unwrap_model(model)
        if isinstance(net, nn.Module) and any(isinstance(m, (M.LSDenseBackbone, M.AGate,
                                                             M.AdaptiveConcat, *M.SEG_HEADS.values()))
                                              for m in net.modules()):
            try:
                return lsdense_gflops(net, imgsz)
            except Exception:  # as Ultralytics: a model that cannot be counted reports 0.0
                return 0.0
        return get_flops(model, imgsz)
    get_flops_lsdense.__lsdense_wrapped__ = True
    return get_flops_lsdense


def _runs_under_working_directory() -> None:
    """Outside an Ultralytics checkout, Ultralytics writes runs to ``./runs`` (its settings'
    default ``runs_dir`` is the relative ``runs``). It takes the git repository that holds its
    own package for its checkout: installed in a virtual environment inside any project's
    checkout (``<project>/.venv``), every run lands in ``<project>/runs`` whatever the
    working directory. When the settings hold exactly that default and the repository is
    not an Ultralytics checkout, ``runs_dir`` is set back to ``runs`` for this process (not
    written to the settings file); a ``runs_dir`` the user set is kept."""
    import ultralytics
    from ultralytics.utils import GIT, SETTINGS

    root = GIT.root
    if root is None or Path(ultralytics.__file__).resolve().parents[1] == Path(root).resolve():
        return
    if SETTINGS.get("runs_dir") == str(Path(root) / "runs"):
        dict.__setitem__(SETTINGS, "runs_dir", "runs")


def register() -> None:
    """Register the lsdense modules with Ultralytics (safe to call repeatedly)."""
    import ultralytics.cfg as ucfg
    import ultralytics.nn.tasks as tasks

    ucfg.TASK2DATA.setdefault("multitask", "bdd100k.yaml")
    ucfg.TASK2METRIC.setdefault("multitask", "metrics/mAP50-95(B)")
    for name, cls in lsdense_modules().items():
        if getattr(tasks, name, cls) is not cls and getattr(tasks, name).__module__ != cls.__module__:
            raise RuntimeError(f"ultralytics.nn.tasks already defines {name!r}; lsdense cannot "
                               f"register a module of the same name.")
        setattr(tasks, name, cls)
    if not hasattr(tasks.parse_model, "__lsdense_wrapped__"):
        tasks.parse_model = _checked(tasks.parse_model)
    if not hasattr(tasks.BaseModel.fuse, "__lsdense_wrapped__"):
        tasks.BaseModel.fuse = _fusing(tasks.BaseModel.fuse)
    from ultralytics.engine.exporter import Exporter

    if not hasattr(Exporter.__call__, "__lsdense_wrapped__"):
        Exporter.__call__ = _exporting(Exporter.__call__)
    for name in TF_EXPORTERS:
        method = getattr(Exporter, name, None)
        if method is not None and not hasattr(method, "__lsdense_wrapped__"):
            setattr(Exporter, name, _refusing_lisa(method))
    from ultralytics.utils.callbacks.base import default_callbacks

    if mark_trained not in default_callbacks["on_train_start"]:
        default_callbacks["on_train_start"].append(mark_trained)
    import ultralytics.utils.torch_utils as tu

    if not hasattr(tu.get_flops, "__lsdense_wrapped__"):
        tu.get_flops = _counting_flops(tu.get_flops)
    _runs_under_working_directory()
    torch.serialization.add_safe_globals(_lsdense_classes())
