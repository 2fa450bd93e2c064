"""Up-front checks with clear errors: dataset YAML paths and YOLO label rows.

Ultralytics drops an image whose label file is malformed with a warning (and
tries to download a dataset whose paths are missing); lsdense entry points call
these checks first so that such data fails loudly, naming the file and line.
The dataset YAML itself is read by Ultralytics' ``check_det_dataset``.
"""
from __future__ import annotations

from pathlib import Path
import logging
import tempfile
from typing import Iterable, List, Optional, Tuple, Union

import yaml

__all__ = ["check_data_yaml", "check_image_channels", "check_label_file", "check_label_dir",
           "parse_label_rows", "preflight"]


def _ultralytics_checked(d: dict, path: str, name: str) -> dict:
    """Ultralytics' own ``check_det_dataset`` on ``d`` (keys, ``names``/``nc``, ``path``
    resolved as training resolves it), without download: the splits are swapped for an
    existing absolute path so that it does not stop at a missing one (the callers check them
    against the returned ``path``). Raises ValueError naming ``name``."""
    from ultralytics.data.utils import check_det_dataset

    probe = {**d, "path": path, **{k: "/" for k in ("train", "val")}}
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "data.yaml"
        f.write_text(yaml.safe_dump(probe))
        try:
            out = check_det_dataset(str(f), autodownload=False)
        except (SyntaxError, TypeError) as err:
            raise ValueError(f"{name}: {' '.join(str(err).replace(str(f), name).split())}") from err
    out.pop("yaml_file", None)  # the probe's temporary file
    return out


def check_data_yaml(data: Union[str, Path, dict], keys: Iterable[str] = ("train", "val")) -> dict:
    """Ultralytics' ``check_det_dataset`` (keys, ``names``/``nc``, ``path`` resolved as training
    resolves it) without downloading, plus the one check it lacks: every split path exists.

    ``check_det_dataset`` checks only ``val`` and stops at the first missing path (then offers
    a download); here all missing paths of ``keys`` are listed in one error. Stock names that
    Ultralytics can download (a ``download`` key, e.g. ``coco.yaml``) are returned unchecked.
    A dict without ``path`` is resolved against the working directory.

    Returns:
        The dataset dict of ``check_det_dataset`` (``path`` resolved, ``nc``, ``names``).

    Raises:
        ValueError: the YAML is missing, lacks a split key, is malformed, or names paths that
            do not exist.
    """
    from ultralytics.utils.checks import check_yaml

    if isinstance(data, dict):
        d, base, name = dict(data), Path.cwd(), "(dict)"
    else:
        p, name = Path(data), str(data)
        if not p.is_file():
            try:
                p = Path(check_yaml(str(data)))  # stock dataset YAML shipped with Ultralytics
            except FileNotFoundError:
                raise ValueError(f"Dataset YAML {data!r} not found.") from None
        d, base = yaml.safe_load(p.read_text()) or {}, p.parent
    if d.get("download"):
        return d
    absent = [k for k in keys if k not in d]
    if absent:
        raise ValueError(f"Dataset YAML {name} has no {', '.join(absent)} key: add the split's "
                         f"image folder(s) relative to 'path'.")
    out = _ultralytics_checked(d, d.get("path") or str(base), f"Dataset YAML {name}")
    root = Path(out["path"])
    missing = []
    for k in keys:
        paths = [(root / v).resolve() for v in (d[k] if isinstance(d[k], list) else [d[k]])]
        missing += [f"{k}: {q}" for q in paths if not q.exists()]
        out[k] = [str(q) for q in paths] if isinstance(d[k], list) else str(paths[0])
    if missing:
        raise ValueError(f"Dataset YAML {name} names paths that do not exist:\n  " +
                         "\n  ".join(missing) + f"\n(relative paths are resolved against path: "
                         f"{root}). Fix 'path' or the split entries.")
    out["path"] = str(root)
    return out


# Ultralytics' verify_image_label reads coordinates within 1 % outside 0..1 (it clips them later)
TOLERANCE = 0.01


def parse_label_rows(text: str, file: Union[str, Path], nc: Optional[int] = None,
                     problems: Optional[List[str]] = None) -> List[List[float]]:
    """Parse YOLO label rows as Ultralytics' ``verify_image_label`` reads them.

    A row is ``cls cx cy w h`` or a polygon ``cls x1 y1 x2 y2 ...`` (at least 3 points: Roboflow,
    CVAT and labelme-to-YOLO exports of segmentation data), normalised to 0..1 within
    Ultralytics' 1 % tolerance; a polygon is read as its enclosing box. What Ultralytics reads
    is read the same way here; what would make it drop the whole image with a warning (a bad
    row, polygon and box rows mixed in one file) is a problem.

    Args:
        text: the file's text (a UTF-8 byte-order mark already removed).
        file: the file, for messages.
        nc: the number of classes (class ids are checked when given).
        problems: collect the problem lines here instead of raising at the first.

    Returns:
        ``[cls, cx, cy, w, h]`` per good row.

    Raises:
        ValueError: ``problems`` is None and a row is bad: ``file:line: bad label row ...``.
    """
    rows, kinds = [], set()

    def report(msg: str) -> None:
        if problems is None:
            raise ValueError(msg)
        problems.append(msg)

    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        problem, box = None, None
        try:
            vals = [float(x) for x in parts]
        except ValueError:
            vals, problem = [], "non-numeric value"
        polygon = len(vals) > 6
        lo, hi = -TOLERANCE, 1.0 + TOLERANCE
        if problem is not None:
            pass
        elif polygon and len(vals) % 2 == 0:
            problem = (f"{len(vals)} values; a polygon row is class x1 y1 x2 y2 ... "
                       f"(an odd count)")
        elif not polygon and len(vals) != 5:
            problem = (f"{len(vals)} values, expected 5 (class cx cy w h) or a polygon "
                       f"(class x1 y1 x2 y2 x3 y3 ...)")
        elif vals[0] != int(vals[0]) or vals[0] < 0 or (nc and vals[0] >= nc):
            problem = f"class {parts[0]} is not an integer in 0..{(nc or 1) - 1 if nc else 'nc-1'}"
        elif not all(lo <= v <= hi for v in vals[1:]):
            problem = "coordinates must be normalised to 0..1"
        else:
            if polygon:
                xs, ys = vals[1::2], vals[2::2]
                box = [(min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2,
                       max(xs) - min(xs), max(ys) - min(ys)]
            else:
                box = vals[1:5]
            if box[2] <= 0 or box[3] <= 0:
                problem = "box width and height must be > 0"
        if problem:
            report(f"{file}:{n}: bad label row {line.strip()!r}: {problem}.")
            continue
        kinds.add(polygon)
        rows.append([vals[0], *box])
    if len(kinds) == 2:
        report(f"{file}: mixes polygon rows and box rows (Ultralytics drops such a file): "
               f"write every row of it in one form.")
    return rows


def check_label_file(path: Union[str, Path], nc: Optional[int] = None) -> List[List[float]]:
    """Read and check one YOLO label file (see :func:`parse_label_rows`); UTF-8 with or without
    a byte-order mark, as Ultralytics reads it."""
    return parse_label_rows(Path(path).read_text(encoding="utf-8-sig"), path, nc)


def check_label_dir(label_dir: Union[str, Path], nc: Optional[int] = None,
                    max_lines: int = 20) -> int:
    """Check every ``*.txt`` label file under a directory; returns the number of files.

    Raises:
        ValueError: every bad row of every file, one line each (the first ``max_lines``, then
            how many more).
    """
    files = sorted(Path(label_dir).rglob("*.txt"))
    problems: List[str] = []
    for f in files:
        parse_label_rows(f.read_text(encoding="utf-8-sig"), f, nc, problems)
    if problems:
        more = len(problems) - max_lines
        raise ValueError(f"{len(problems)} bad label row(s) under {label_dir}:\n  " +
                         "\n  ".join(problems[:max_lines]) +
                         (f"\n  ... and {more} more" if more > 0 else ""))
    return len(files)


def check_image_channels(d: dict, keys: Iterable[str] = ("train", "val")) -> None:
    """Check that the first image of each split has the data YAML's ``channels``.

    Ultralytics reads images as grey for ``channels: 1``, as BGR for 3 and as they are
    (``cv2.IMREAD_UNCHANGED``) otherwise, and builds the model for ``channels``; so with 4
    (RGB+IR) a 3-channel JPEG reaches a 4-channel model. ``d`` is the dict returned by
    :func:`check_data_yaml`.

    Raises:
        ValueError: an image's channel count differs from ``channels``.
    """
    channels = int(d.get("channels", 3))
    if channels in (1, 3):
        return
    import cv2
    from ultralytics.data.utils import IMG_FORMATS
    from ultralytics.utils.patches import imread

    for k in keys:
        for v in (d[k] if isinstance(d.get(k), list) else [d.get(k)]):
            if v is None:
                continue
            q = Path(v) if Path(v).is_absolute() else Path(d["path"]) / v
            files = [q] if q.is_file() and q.suffix.lower().lstrip(".") in IMG_FORMATS else \
                sorted(f for f in q.rglob("*") if f.suffix.lower().lstrip(".") in IMG_FORMATS) if q.is_dir() else []
            if not files:
                continue
            im = imread(str(files[0]), cv2.IMREAD_UNCHANGED)
            got = 1 if im is None or im.ndim == 2 else im.shape[2]
            if im is not None and got != channels:
                raise ValueError(
                    f"Dataset YAML says channels: {channels}, but {files[0]} has {got} channels. "
                    f"Ultralytics reads such files unchanged and builds the model for {channels} "
                    f"channels: store the images with {channels} channels (e.g. PNG/TIFF for RGB+IR) "
                    f"or set channels: {got}.")


# --- one pre-flight for tools/train.py (Ultralytics side) -------------------------------------

_TASK_LABELS = {"detect": "boxes (cls cx cy w h) or polygons (turned into boxes)",
                "segment": "polygons (cls x1 y1 x2 y2 ...)",
                "obb": "4-corner polygons (cls x1 y1 x2 y2 x3 y3 x4 y4)",
                "pose": "boxes + keypoints (cls cx cy w h px1 py1 [v1] ...)"}
MAX_LINES_PER_KEY = 10  # corrupt label files listed per split; the rest are counted


def _split_images(value, root: Path) -> List[str]:
    """Image files of one split entry as Ultralytics lists them (``BaseDataset.get_img_files``:
    a folder, a list of folders, or a .txt of image paths)."""
    from types import SimpleNamespace

    from ultralytics.data.base import BaseDataset

    paths = [str(Path(v) if Path(v).is_absolute() else root / v)
             for v in (value if isinstance(value, list) else [value])]
    try:
        return BaseDataset.get_img_files(SimpleNamespace(prefix="", fraction=1.0), paths)
    except FileNotFoundError:
        return []


def _dataset_root(d: dict, name: str, yaml_dir: Path) -> Tuple[Path, List[str], List[str]]:
    """Resolve ``path`` as Ultralytics' ``check_det_dataset`` does (a relative path: against
    the working directory if it exists there, else against its ``datasets_dir`` setting), and
    say how: returns (root, problems, notes)."""
    from ultralytics.utils import DATASETS_DIR

    raw = d.get("path")
    if not raw:
        return yaml_dir.resolve(), [], []
    p = Path(str(raw))
    if p.is_absolute() or p.exists():
        return p.resolve(), [], []
    root = (DATASETS_DIR / p).resolve()
    beside = (yaml_dir / p).resolve()
    if root.exists() and beside.exists() and beside != root:
        return root, [f"{name} path: {raw!r} is read from {root} (Ultralytics resolves a relative "
                      f"path against the working directory {Path.cwd()}, then its datasets_dir "
                      f"{DATASETS_DIR}), but another copy is next to the YAML at {beside}: write "
                      f"the absolute path of the one you mean"], []
    if not root.exists() and beside.exists():
        return root, [f"{name} path: {raw!r} does not exist relative to the working directory "
                      f"{Path.cwd()} nor to Ultralytics' datasets_dir {DATASETS_DIR} (relative "
                      f"paths are not read against the YAML's folder): write path: {beside}"], []
    if root.exists():
        return root, [], [f"{name} path: {raw!r} resolved to {root} (Ultralytics' datasets_dir "
                          f"{DATASETS_DIR}; it does not exist under {Path.cwd()})"]
    return root, [f"{name} path: {raw!r} does not exist (tried {Path.cwd() / p} and {root}, "
                  f"Ultralytics' datasets_dir): write an absolute path"], []


def _scan_labels(ims: List[str], lbs: List[str], task: str, nc: Optional[int], kpt
                 ) -> Tuple[List[Tuple[str, str]], int, int, int]:
    """Ultralytics' ``verify_image_label`` over a split (threaded, as its own scan), or its
    label cache (``<labels>.cache``) when that is valid for these files and settings and holds
    no corrupt file. Returns (corrupt [(label file, message)], label files found, boxes,
    polygons)."""
    from multiprocessing.pool import ThreadPool

    from ultralytics.data.dataset import DATASET_CACHE_VERSION
    from ultralytics.data.utils import get_hash, load_dataset_cache_file, verify_image_label
    from ultralytics.utils import NUM_THREADS

    pose = task == "pose" and bool(kpt)
    # the hash of YOLODataset.get_cache_hash
    key = get_hash(lbs + ims + [str((pose, nc, kpt, False))])
    try:
        cache = load_dataset_cache_file(Path(lbs[0]).parent.with_suffix(".cache"))
        if cache["version"] == DATASET_CACHE_VERSION and cache["hash"] == key and not cache["results"][3]:
            labels = cache["labels"]
            return ([], cache["results"][0], sum(len(lb["cls"]) for lb in labels),
                    sum(len(lb["segments"]) for lb in labels))
    except Exception:  # no cache, or another version: scan
        pass
    nkpt, ndim = (list(kpt) + [2])[:2] if kpt else (0, 0)
    args = [(im, lb, "", pose, nc or 10 ** 9, nkpt, ndim, False) for im, lb in zip(ims, lbs)]
    with ThreadPool(NUM_THREADS) as pool:
        res = pool.map(verify_image_label, args)
    ok = [r for r in res if r[0] is not None]
    return ([(lb, r[-1]) for lb, r in zip(lbs, res) if r[0] is None], sum(r[6] for r in ok),
            sum(len(r[1]) for r in ok), sum(len(r[3]) for r in ok))


def preflight(data: Union[str, Path], task: str = "detect", keys: Iterable[str] = ("train", "val")
              ) -> dict:
    """Check everything a data YAML names before a model is built, and report all problems at once.

    Checks: the YAML is found and passes Ultralytics' own key checks (``check_det_dataset``
    without download); ``path`` resolves as Ultralytics resolves it, and not silently to
    another copy (:func:`_dataset_root`); every split path exists and holds images; every
    label file passes Ultralytics' own ``verify_image_label`` (its tolerances: coordinates
    up to 1.01, polygon rows turned into boxes, class ids below ``nc``), which would
    otherwise drop the image with a warning; the labels fit the model's ``task`` (polygons
    for segment/obb, ``kpt_shape`` and keypoint columns for pose); image channels fit
    ``channels``. A dataset Ultralytics can download (``download:`` key) is not checked.

    Args:
        data: the data YAML (path or a stock name such as ``coco8.yaml``).
        task: the model's task (``detect``, ``segment``, ``obb``, ``pose``; from the model
            YAML's head, see :func:`lsdense.yolo.train.guess_task`).
        keys: the splits to check.

    Returns:
        The resolved dataset dict (as :func:`check_data_yaml`).

    Raises:
        ValueError: one line per problem (``<yaml> <key>: <value>: <problem>: <fix>``).
    """
    from ultralytics.data.utils import img2label_paths
    from ultralytics.utils import LOGGER
    from ultralytics.utils.checks import check_yaml

    p, name = Path(str(data)), str(data)
    if not p.is_file():
        try:
            p = Path(check_yaml(str(data)))
        except FileNotFoundError:
            raise ValueError(f"data: {name!r} not found: give the path of a data YAML "
                             f"(or a stock name such as coco8.yaml)") from None
    d = yaml.safe_load(p.read_text()) or {}
    if d.get("download"):
        return d  # a stock dataset: Ultralytics downloads it
    problems: List[str] = []
    keys = list(keys) + (["test"] if d.get("test") and "test" not in keys else [])
    absent = [k for k in keys if not d.get(k)]
    problems += [f"{name} {k}: missing: add the split's image folder (relative to 'path')"
                 for k in absent]
    root, more, notes = _dataset_root(d, name, p.parent)
    problems += more
    for n in notes:
        LOGGER.info(f"lsdense: {n}")
    try:
        out = _ultralytics_checked(d, str(root), name)
    except ValueError as err:
        problems.append(str(err))
        out = dict(d, path=str(root), names={}, nc=None)
    nc = out.get("nc")
    kpt = out.get("kpt_shape")
    if task == "pose" and not kpt:
        problems.append(f"{name} kpt_shape: missing: a pose model needs the keypoint layout, "
                        f"e.g. kpt_shape: [17, 3] (17 points, x y visible)")
    for k in keys:
        if k in absent or more:  # no split lines under a 'path' that is itself wrong
            continue
        entries = d[k] if isinstance(d[k], list) else [d[k]]
        bad = [v for v in entries if not (Path(v) if Path(str(v)).is_absolute() else root / v).exists()]
        if bad:
            problems += [f"{name} {k}: {v!r} -> {root / v} does not exist: fix '{k}' or 'path' "
                         f"(relative entries are read against path: {root})" for v in bad]
            continue
        level = LOGGER.level
        LOGGER.setLevel(logging.WARNING)  # its image-access speed lines
        try:
            ims = _split_images(d[k], root)
        finally:
            LOGGER.setLevel(level)
        if not ims:
            problems.append(f"{name} {k}: {d[k]!r}: no images found under {root}: point '{k}' at "
                            f"the image folder (or a .txt list of images)")
            continue
        lbs = img2label_paths(ims)
        corrupt, found, boxes, polys = _scan_labels(ims, lbs, task, nc, kpt)
        for lb, msg in corrupt[:MAX_LINES_PER_KEY]:
            why = " ".join(msg.split("ignoring corrupt image/label:", 1)[-1].split())
            if task != "pose" and Path(lb).is_file():  # the same rules, with the line number
                try:
                    check_label_file(lb, nc)
                except ValueError as err:
                    why = str(err).rstrip(".")
            problems.append(f"{name} {k}: {why if why.startswith(lb) else f'{lb}: {why}'}: "
                            f"Ultralytics would drop this image; fix the file")
        if len(corrupt) > MAX_LINES_PER_KEY:
            problems.append(f"{name} {k}: {len(corrupt) - MAX_LINES_PER_KEY} more corrupt label "
                            f"files (not listed): run again after fixing the ones above")
        if not found and not corrupt and k != "test":  # a test split may come without labels
            problems.append(f"{name} {k}: {d[k]!r}: no label files for its {len(ims)} images: "
                            f"expected e.g. {lbs[0]} (Ultralytics reads labels from the "
                            f"'labels' folder beside 'images')")
            continue
        if task in ("segment", "obb") and boxes and not polys:
            problems.append(f"{name} {k}: labels hold {boxes} boxes and no polygons, but the model "
                            f"is a {task} model (its YAML's head), which learns from "
                            f"{_TASK_LABELS[task]}: use {task} labels, or a detection model YAML")
    try:
        check_image_channels({**out, **{k: d.get(k) for k in keys}, "path": str(root)}, keys)
    except ValueError as err:
        problems.append(f"{name} channels: {err}")
    if problems:
        raise ValueError("\n".join(problems))
    out.update({k: d[k] for k in keys})
    out["path"] = str(root)
    return out
