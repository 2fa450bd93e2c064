"""Up-front checks with clear errors: dataset YAML paths and YOLO label rows.

Ultralytics drops an image whose label file is malformed with a warning (and
tries to download a dataset whose paths are missing); lsdense entry points call
these checks first so that such data fails loudly, naming the file and line.
The dataset YAML itself is read by Ultralytics' ``check_det_dataset``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Optional, Union

import yaml

__all__ = ["check_data_yaml", "check_image_channels", "check_label_file", "check_label_dir",
           "parse_label_rows"]


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
    import tempfile

    from ultralytics.data.utils import check_det_dataset
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
    # Ultralytics validates and resolves 'path'; the splits are swapped for an existing absolute
    # path so that it does not stop at a missing one, and are then checked against its root.
    probe = {**d, "path": d.get("path") or str(base), **{k: "/" for k in ("train", "val")}}
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "data.yaml"
        f.write_text(yaml.safe_dump(probe))
        try:
            out = check_det_dataset(str(f), autodownload=False)
        except (SyntaxError, TypeError) as err:
            raise ValueError(f"Dataset YAML {name}: {err}") from err
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
    out.pop("yaml_file", None)  # the probe's temporary file
    out["path"] = str(root)
    return out


# Ultralytics' verify_image_label reads coordinates within 1 % outside 0..1 (it clips them later)
_TOLERANCE = 0.01


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
        lo, hi = -_TOLERANCE, 1.0 + _TOLERANCE
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
