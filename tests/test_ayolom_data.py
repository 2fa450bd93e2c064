"""A-YOLOM official release layout: polygon txt segmentation labels per task directory, rasterised
at the working resolution (facts: ../shared/specs/official.md, bdd-multi.yaml of the official repo)."""
import os
import tempfile

import numpy as np
import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="yolo-cfg-"))
pytest.importorskip("ultralytics")

import cv2  # noqa: E402

from lsdense.yolo.multitask.data import MultiTaskDataset, fill_polygons, read_polygons  # noqa: E402

H, W = 64, 96


def _release(root, lane_for_b=False):
    """Two 96x64 frames in the official layout; frame b has no lane file (no lane in it)."""
    for d in ("images/val2017", "detection-object/labels/val2017", "seg-drivable-10/labels/val2017",
              "seg-lane-11/labels/val2017"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for name in ("a", "b"):
        cv2.imwrite(str(root / f"images/val2017/{name}.jpg"), np.full((H, W, 3), 90, np.uint8))
        (root / f"detection-object/labels/val2017/{name}.txt").write_text(
            "2 0.5 0.5 0.25 0.25\n7 0.2 0.2 0.1 0.1\n")  # car (kept as 0) and traffic light (dropped)
        # drivable: bottom half, x in [24, 72) -> a rectangle polygon
        (root / f"seg-drivable-10/labels/val2017/{name}.txt").write_text(
            "10 0.25 0.5 0.75 0.5 0.75 1.0 0.25 1.0\n")
    # lane on a only: a thin quad x 48..50, y 16..48 (two polygons in one file: both are filled)
    (root / "seg-lane-11/labels/val2017/a.txt").write_text(
        "11 0.5 0.25 0.53125 0.25 0.53125 0.75 0.5 0.75\n11 0.0 0.0 0.0625 0.0 0.0625 0.0625\n")
    if lane_for_b:
        (root / "seg-lane-11/labels/val2017/b.txt").write_text("")
    return {"path": str(root), "train": "images/val2017", "val": "images/val2017", "names": {0: "vehicle"},
            "layout": "ayolom", "class_map": {2: 0}, "channels": 3}


def _dataset(data, imgsz=96, augment=False):
    from ultralytics.cfg import get_cfg

    return MultiTaskDataset(img_path=data["path"] + "/images/val2017", imgsz=imgsz, augment=augment,
                            hyp=get_cfg(overrides={"imgsz": imgsz}), data=data, batch_size=2)


def test_polygon_release_layout_rasterised_at_working_resolution(tmp_path):
    ds = _dataset(_release(tmp_path))
    a, b = (ds.im_files.index(str(tmp_path / f"images/val2017/{n}.jpg")) for n in ("a", "b"))
    expect = np.zeros((H, W), np.uint8)
    expect[32:64, 24:73] |= 1  # fillPoly includes the right/bottom edge (x = 72, y = 64 clipped)
    expect[16:49, 48:52] |= 2
    tri = np.zeros((H, W), np.uint8)
    cv2.fillPoly(tri, [np.array([[0, 0], [6, 0], [6, 4]], np.int32)], 2)
    expect |= tri
    assert np.array_equal(ds.load_packed_mask(a), expect)
    assert np.array_equal(ds.load_packed_mask(b), expect & 1)  # no lane file: no lane
    assert ds.labels[a]["cls"].ravel().tolist() == [0]  # class_map keeps the car only
    # working resolution: imgsz 48 loads the frame at 32x48 and fills the polygons there
    small = _dataset(_release(tmp_path), imgsz=48)
    item = small[small.im_files.index(str(tmp_path / "images/val2017/a.jpg"))]
    m = item["semantic_mask"]
    assert tuple(m.shape) == tuple(item["img"].shape[1:])
    polys = read_polygons(tmp_path / "seg-drivable-10/labels/val2017/a.txt")
    drivable = fill_polygons(polys, 32, 48)
    top = (m.shape[0] - 32) // 2  # letterbox padding rows above (255)
    assert (m[:top] == 255).all() and np.array_equal((m[top:top + 32] & 1).numpy(), drivable)


def test_polygon_errors_name_the_file_and_line(tmp_path):
    data = _release(tmp_path)
    bad = tmp_path / "seg-lane-11/labels/val2017/a.txt"
    bad.write_text("11 0.5 0.25 0.6 0.25\n")
    with pytest.raises(ValueError, match=r"a\.txt:1: bad polygon row .* fewer than 3 points"):
        _dataset(data)
    bad.write_text("11 0.5 0.25 0.6 0.25 1.5 0.3\n")
    with pytest.raises(ValueError, match="normalised to 0..1"):
        _dataset(data)
    bad.unlink()
    with pytest.raises(ValueError, match="No lane polygon files found"):
        _dataset(data)
