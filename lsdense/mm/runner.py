"""``train`` / ``test`` for mmdet and mmseg configs (what ``tools/*.py`` call).

Both load the config (its ``custom_imports`` register lsdense), apply the
command-line options the way mmdet's / mmseg's own tools do, run the
pre-flight checks of :mod:`lsdense.mm.checks` and then hand over to mmengine's
``Runner``. Data errors during the run (an unreadable image) come back as a
:class:`DataError` naming the file.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import os
import os.path as osp
import re
import time
import warnings
from pathlib import Path
from typing import Dict, Iterator, Optional, Union

from .checks import PreflightError, framework_of, preflight

__all__ = ["DataError", "REPORTED_ERRORS", "add_runner_arguments", "load_config", "train", "test",
           "build_runner", "setup_cpu_distributed"]

PathLike = Union[str, Path]


class DataError(RuntimeError):
    """A sample of the dataset could not be read (the message names the file)."""


# What tools/train.py and tools/test.py report as one "error: ..." line (exit status 1) instead of
# a traceback: config/data problems found before or during the run; ConnectionError: a weights URL.
REPORTED_ERRORS = (PreflightError, DataError, ConnectionError)


def add_runner_arguments(parser, work_dir_help: str = "where logs and checkpoints go") -> None:
    """Add the options ``tools/train.py`` and ``tools/test.py`` share, spelled as mmdet's and
    mmseg's tools: ``--work-dir``, ``--cfg-options KEY=VALUE ...`` (mmengine's ``DictAction``),
    ``--launcher`` and torch.distributed.launch's ``--local_rank``.

    Args:
        parser: an ``argparse.ArgumentParser``; the tool parses its own command line.
        work_dir_help: the help line of ``--work-dir``.
    """
    from mmengine.config import DictAction

    parser.add_argument("--work-dir", help=work_dir_help)
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default=None,
                        help="override config keys, e.g. train_dataloader.batch_size=4")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)


def load_config(config: PathLike, cfg_options: Optional[dict] = None,
                work_dir: Optional[PathLike] = None, launcher: str = "none"):
    """Read ``config`` (importing its ``custom_imports``), merge options, set the work dir.

    ``config`` is a file, or the name of a bundled config (``'retinanet_lsnet_t_coco.py'``,
    ``'configs/quickstart/...'``: :func:`lsdense.cfg.mm_config`), found from any directory.
    ``work_dir`` precedence as in mmdet/mmseg: argument, then the config's, then
    ``./work_dirs/<config name>``.

    Raises:
        PreflightError: ``config`` is neither a file nor a bundled config.
    """
    from mmengine.config import Config

    from lsdense.cfg import mm_config

    config = str(mm_config(config))
    if not osp.isfile(config):
        raise PreflightError(f"Config file not found: {config} (neither a file nor one of the "
                             f"bundled configs: lsdense.cfg.list_mm_configs())")
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    framework_of(cfg)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = str(work_dir)
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(config))[0])
    return cfg


def build_runner(cfg):
    """``Runner.from_cfg`` (or the config's ``runner_type``), in the config's scope; mmdet runs
    get :class:`~lsdense.mm.hooks.VOCClassNamesHook`."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    if framework_of(cfg) == "mmdet":  # VOC tables name the config's classes (mm/hooks.py)
        hooks = list(cfg.get("custom_hooks") or [])
        if not any(h.get("type") == "VOCClassNamesHook" for h in hooks):
            cfg.custom_hooks = hooks + [dict(type="VOCClassNamesHook")]
    if "runner_type" in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


# mmcv's LoadImageFromFile: ``assert img is not None, f'failed to load image: {filename}'``
_IMAGE_ERR = re.compile(r"failed to load image: ([^\n]+)")


@contextlib.contextmanager
def data_errors() -> Iterator[None]:
    """Turn an unreadable-image failure deep in a data pipeline into a :class:`DataError`."""
    try:
        yield
    except (AssertionError, OSError, ValueError, RuntimeError) as err:
        m = _IMAGE_ERR.search(str(err))
        if m is None:
            raise
        path = m.group(1).strip()
        raise DataError(f"Could not read image {path}: the file is corrupt or not an image. "
                        f"Replace it, or remove it from the dataset's annotations.") from err


def setup_cpu_distributed(cfg) -> bool:
    """Let a distributed run (``--launcher pytorch``, torchrun) work on a machine without CUDA.

    mmengine's launcher calls ``torch.cuda.set_device`` and wraps the model with
    ``device_ids=[LOCAL_RANK]``, both GPU-only. Without CUDA this starts the process
    group itself with the config's ``env_cfg.dist_cfg`` (mmengine then finds it
    started and skips its own set-up) and wraps the model the way DDP takes CPU
    modules (``device_ids=None``). With CUDA, or without a launcher, nothing changes.

    Returns:
        True when it started the process group.

    Raises:
        PreflightError: ``dist_cfg.backend`` is not ``'gloo'`` on a machine without
        CUDA (NCCL needs GPUs), or the launcher is not ``pytorch``.
    """
    import torch

    if cfg.get("launcher", "none") == "none" or torch.cuda.is_available():
        return False
    dist_cfg = dict((cfg.get("env_cfg") or {}).get("dist_cfg") or {})
    backend = dist_cfg.pop("backend", "nccl")
    if backend != "gloo":
        raise PreflightError(
            f"env_cfg.dist_cfg.backend={backend!r} needs CUDA GPUs and this machine has none. "
            f"Train on CPU with --cfg-options env_cfg.dist_cfg.backend=gloo")
    if cfg.launcher != "pytorch":
        raise PreflightError(f"Distributed training without CUDA supports --launcher pytorch "
                             f"(tools/dist_train.sh, torchrun), not {cfg.launcher!r}.")
    wrapper = dict(cfg.get("model_wrapper_cfg") or {})
    if wrapper.get("type", "MMDistributedDataParallel") == "MMDistributedDataParallel":
        wrapper.setdefault("type", "MMDistributedDataParallel")
        wrapper.setdefault("broadcast_buffers", False)  # as mmengine's default wrapper
        wrapper.setdefault("find_unused_parameters", cfg.get("find_unused_parameters", False))
        wrapper["device_ids"] = None  # DDP of a CPU module
        cfg.model_wrapper_cfg = wrapper
    import torch.distributed as dist

    if dist.is_initialized():
        return False
    if "timeout" in dist_cfg:  # seconds in the config, as mmengine's init_dist takes it
        dist_cfg["timeout"] = datetime.timedelta(seconds=dist_cfg["timeout"])
    dist.init_process_group(backend=backend, **dist_cfg)
    return True


def _end_distributed(started: bool) -> None:
    if started:
        import torch.distributed as dist

        dist.destroy_process_group()


def _apply_resume(cfg, resume: Optional[str]) -> None:
    if resume == "auto":
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        if not osp.isfile(resume):
            raise PreflightError(f"--resume checkpoint not found: {resume}")
        cfg.resume = True
        cfg.load_from = resume


def _apply_amp(cfg) -> None:
    import torch

    if not torch.cuda.is_available():
        raise PreflightError("--amp needs a CUDA GPU (mmengine's AmpOptimWrapper); "
                             "train without --amp on CPU.")
    if cfg.optim_wrapper.get("type", "OptimWrapper") != "AmpOptimWrapper":
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.setdefault("loss_scale", "dynamic")


def train(config: PathLike, work_dir: Optional[PathLike] = None, resume: Optional[str] = None,
          amp: bool = False, auto_scale_lr: bool = False, cfg_options: Optional[dict] = None,
          launcher: str = "none"):
    """Train an mmdet/mmseg config; return the mmengine ``Runner`` after training.

    Args:
        config: config file path.
        work_dir: where logs and checkpoints go.
        resume: ``'auto'`` (latest checkpoint in ``work_dir``) or a checkpoint path.
        amp: mixed precision (GPU).
        auto_scale_lr: scale the lr by (total batch) / ``auto_scale_lr.base_batch_size``.
        cfg_options: ``--cfg-options`` as a dict of dotted keys.
        launcher: ``'none'``, ``'pytorch'`` (torchrun), ``'slurm'`` or ``'mpi'``.

    Raises:
        PreflightError: config or dataset problems, before anything is built.
        DataError: an image of the dataset cannot be read.
    """
    cfg = load_config(config, cfg_options, work_dir, launcher)
    _apply_resume(cfg, resume)
    preflight(cfg, "train", str(config))
    if amp:
        _apply_amp(cfg)
    if auto_scale_lr:
        if "auto_scale_lr" not in cfg or "base_batch_size" not in cfg.auto_scale_lr:
            raise PreflightError(f"{config} has no auto_scale_lr.base_batch_size; "
                                 f"cannot scale the learning rate.")
        cfg.auto_scale_lr.enable = True
    started = setup_cpu_distributed(cfg)
    try:
        runner = build_runner(cfg)
        with data_errors():
            runner.train()
    finally:
        _end_distributed(started)
    return runner


def _visualize(cfg, framework: str, show: bool, show_dir: Optional[str], wait_time: float) -> None:
    """``--show`` / ``--show-dir`` as mmdet's and mmseg's tools/test.py: draw every test image,
    show it in a window (``wait_time`` s) and / or save it under ``show_dir``."""
    hook = cfg.default_hooks.get("visualization")
    if hook is None:
        raise PreflightError("--show / --show-dir need default_hooks.visualization in the config "
                             "(dict(type='DetVisualizationHook') or 'SegVisualizationHook').")
    if framework == "mmdet":  # mmdet's own function, as its tools/test.py calls it
        from mmdet.engine.hooks.utils import trigger_visualization_hook

        trigger_visualization_hook(cfg, argparse.Namespace(
            show=show, show_dir=show_dir, wait_time=wait_time))
        return
    hook["draw"] = True  # mmseg's tools/test.py trigger_visualization_hook (a script function)
    if show:
        hook["show"] = True
        hook["wait_time"] = wait_time
    if show_dir:  # saved through the visualizer's backends: PNGs in show_dir/vis_data/vis_image
        hook["interval"] = 1
        cfg.visualizer["save_dir"] = show_dir
        # a fresh name: the base config's fixed 'visualizer' would return an instance an
        # earlier runner of this process created, with that run's save_dir
        cfg.visualizer["name"] = f"lsdense_test_{osp.basename(show_dir)}_{time.time_ns()}"


def _apply_tta(cfg, framework: str) -> None:
    """``--tta`` as mmdet's / mmseg's tools/test.py: the config's ``tta_model`` wraps the model
    and ``tta_pipeline`` replaces the test pipeline. mmdet's tool falls back to a flip-only
    ``DetTTAModel``; so does this one (with the same warning)."""
    if framework == "mmdet":
        if "tta_model" not in cfg:
            warnings.warn("Cannot find ``tta_model`` in config, we will set it as default.")
            cfg.tta_model = dict(type="DetTTAModel", tta_cfg=dict(
                nms=dict(type="nms", iou_threshold=0.5), max_per_img=100))
        if "tta_pipeline" not in cfg:
            warnings.warn("Cannot find ``tta_pipeline`` in config, we will set it as default.")
            ds = cfg.test_dataloader.dataset
            while "dataset" in ds:
                ds = ds["dataset"]
            cfg.tta_pipeline = copy.deepcopy(ds.pipeline)
            cfg.tta_pipeline[-1] = dict(type="TestTimeAug", transforms=[
                [dict(type="RandomFlip", prob=1.), dict(type="RandomFlip", prob=0.)],
                [dict(type="PackDetInputs", meta_keys=(
                    "img_id", "img_path", "ori_shape", "img_shape", "scale_factor", "flip",
                    "flip_direction"))]])
        if any(k.endswith("mask_head") for k in (cfg.model.get("roi_head") or {})):
            raise PreflightError("--tta: mmdet's DetTTAModel merges boxes only (it refuses "
                                 "instance masks); test Mask R-CNN configs without --tta.")
        from mmengine.config import ConfigDict

        cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    else:
        missing = [k for k in ("tta_model", "tta_pipeline") if k not in cfg]
        if missing:
            raise PreflightError(f"--tta needs {' and '.join(missing)} in the config (mmseg's "
                                 f"default_runtime.py and dataset base files define them).")
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def test(config: PathLike, checkpoint: PathLike, work_dir: Optional[PathLike] = None,
         show_dir: Optional[PathLike] = None, cfg_options: Optional[dict] = None,
         launcher: str = "none", out: Optional[str] = None, tta: bool = False,
         show: bool = False, wait_time: float = 2) -> Dict[str, float]:
    """Evaluate ``checkpoint`` with the config's test loop; return the metrics.

    The options are those of mmdet's and mmseg's ``tools/test.py``, with their meaning.

    Args:
        config: config file path.
        checkpoint: an mmengine checkpoint (ours, or converted by ``tools/convert_official.py``);
            its keys and shapes must fit the config's model entirely (pre-flight).
        work_dir: where the test log goes.
        show_dir: save the visualised predictions (PNG) in this folder.
        cfg_options: ``--cfg-options`` as a dict of dotted keys.
        launcher: as in :func:`train`.
        out: mmdet: a ``.pkl`` file of the raw predictions (``DumpDetResults``, what
            mmdet's ``confusion_matrix.py`` reads); mmseg: a folder for the predicted maps
            (``IoUMetric(output_dir=..., keep_results=True)``).
        tta: test-time augmentation (the config's ``tta_model`` / ``tta_pipeline``).
        show: show each drawn image in a window for ``wait_time`` seconds.

    Raises:
        PreflightError: every config, data and checkpoint problem, before anything runs.
    """
    cfg = load_config(config, cfg_options, work_dir, launcher)
    framework = framework_of(cfg)
    checkpoint = str(checkpoint)
    preflight(cfg, "test", str(config), checkpoint=checkpoint)
    if out is not None and framework == "mmdet" and not out.endswith((".pkl", ".pickle")):
        raise PreflightError(f"--out {out}: mmdet dumps predictions to a .pkl / .pickle file.")
    cfg.load_from = checkpoint
    if show or show_dir is not None:
        if show_dir is not None:
            show_dir = osp.abspath(show_dir)
            os.makedirs(show_dir, exist_ok=True)
        _visualize(cfg, framework, show, show_dir, wait_time)
    if tta:
        _apply_tta(cfg, framework)
    if out is not None and framework == "mmseg":
        cfg.test_evaluator["output_dir"] = out
        cfg.test_evaluator["keep_results"] = True
    started = setup_cpu_distributed(cfg)
    try:
        runner = build_runner(cfg)
        if out is not None and framework == "mmdet":
            from mmdet.evaluation import DumpDetResults

            runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=out))
        with data_errors():
            metrics = runner.test()
    finally:
        _end_distributed(started)
    return dict(metrics)
