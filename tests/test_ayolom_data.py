"""A-YOLOM official release layout: polygon txt segmentation labels per task directory, rasterised
at the working resolution (facts: ../shared/specs/official.md, bdd-multi.yaml of the official repo)."""
import pickle
import random

import numpy as np
import pytest

pytest.importorskip("ultralytics")

import cv2  # noqa: E402

from lsdense.yolo.multitask.data import MultiTaskDataset, fill_polygons, read_polygons  # noqa: E402
from ultralytics.utils.ops import resample_segments  # noqa: E402

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


def test_label_tolerance_matches_ultralytics(tmp_path):
    """Rows Ultralytics' own verify_image_label accepts are accepted (issue 18): a polygon point
    at y = 1.00098 (as in the A-YOLOM release), a box coordinate 1.0000001, and polygon rows in
    a detection label file (turned into their boxes); 1.02 is refused by both."""
    from ultralytics.data.utils import verify_image_label

    from lsdense.yolo.checks import check_label_file

    data = _release(tmp_path)
    (tmp_path / "seg-drivable-10/labels/val2017/a.txt").write_text(
        "10 0.25 0.5 0.75 0.5 0.75 1.00098 0.25 1.00098\n")
    det = tmp_path / "detection-object/labels/val2017/a.txt"
    det.write_text("2 0.5 0.5 0.25 0.25 0.5 1.0000001\n")  # a triangle, last y just above 1
    ds = _dataset(data)
    a = ds.im_files.index(str(tmp_path / "images/val2017/a.jpg"))
    assert np.allclose(ds.labels[a]["bboxes"], [[0.375, 0.625, 0.25, 0.7500001]])
    assert ds.load_packed_mask(a)[32:, 24:73].all()  # the drivable rectangle down to the last row
    img = str(tmp_path / "images/val2017/a.jpg")
    for text, ok in (("0 0.5 0.5 0.2 1.0000001", True), ("0 0.1 0.1 0.3 0.1 0.3 0.4", True),
                     ("0 0.5 0.5 0.2 1.02", False), ("0 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.3 0.1 0.3 0.4", False)):
        det.write_text(text + "\n")
        ultra = verify_image_label((img, str(det), "", False, 80, 0, 0, False))[0] is not None
        try:
            check_label_file(det, 80)
            ours = True
        except ValueError:
            ours = False
        assert ours == ultra == ok, text


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


# Scene for the post-augmentation tests: a drivable quad and a lane quad (frame a only) drawn in the
# image in their own colours, with the same polygons as labels (generic, non-axis-aligned edges).
DRV = np.array([[0.1, 0.55], [0.45, 0.5], [0.9, 0.95], [0.05, 0.98]], np.float32)
LANE = np.array([[0.6, 0.1], [0.66, 0.12], [0.8, 0.45], [0.74, 0.45]], np.float32)
BG, PAD, BLUE, GREEN = (90, 90, 90), (114, 114, 114), (255, 0, 0), (0, 255, 0)  # BGR; 114 = Ultralytics padding


def _scene(root, h, w, split="val2017"):
    for d in ("images", "detection-object/labels", "seg-drivable-10/labels", "seg-lane-11/labels"):
        (root / d / split).mkdir(parents=True, exist_ok=True)
    row = " ".join(f"{v:.6f}" for v in DRV.ravel())
    for name in ("a", "b"):
        img = np.full((h, w, 3), BG, np.uint8)
        cv2.fillPoly(img, [(DRV * (w, h)).astype(np.int32)], BLUE)
        if name == "a":
            cv2.fillPoly(img, [(LANE * (w, h)).astype(np.int32)], GREEN)
            (root / f"seg-lane-11/labels/{split}/a.txt").write_text(
                "11 " + " ".join(f"{v:.6f}" for v in LANE.ravel()) + "\n")
        cv2.imwrite(str(root / f"images/{split}/{name}.png"), img)  # lossless: colours stay exact
        (root / f"detection-object/labels/{split}/{name}.txt").write_text("2 0.5 0.3 0.2 0.2\n")
        (root / f"seg-drivable-10/labels/{split}/{name}.txt").write_text(f"10 {row}\n")
    return {"path": str(root), "train": f"images/{split}", "val": f"images/{split}", "names": {0: "vehicle"},
            "layout": "ayolom", "class_map": {2: 0}, "channels": 3}


def _hand_fill(polys, scale_wh, pad_xy, shape):
    """The official fill done by hand: 1000-point resampling (official Instances), scale, pad, truncate."""
    m = np.zeros(shape, np.uint8)
    for p in polys:
        pts = resample_segments([p.copy()], 1000)[0] * scale_wh + pad_xy
        cv2.fillPoly(m, [pts.astype(np.int32)], 1)
    return m


def test_polygons_filled_after_letterbox_equal_hand_fill(tmp_path):
    """(a) no augmentation: 128x96 frames at imgsz 64 load at 64x48 and letterbox to 64x64 (8 rows
    of padding above and below); the mask is the polygons filled there, padding 255."""
    data = _scene(tmp_path, 96, 128)
    ds = _dataset(data, imgsz=64)
    for name, lane in (("a", [LANE]), ("b", [])):  # (c) frame b has no lane file: an empty lane mask
        item = ds[ds.im_files.index(str(tmp_path / f"images/val2017/{name}.png"))]
        m = item["semantic_mask"].numpy()
        assert m.shape == (64, 64) == tuple(item["img"].shape[1:])
        assert (m[:8] == 255).all() and (m[56:] == 255).all()
        drv, ln = (_hand_fill(p, (64, 48), (0, 8), (64, 64))[8:56] for p in ([DRV], lane))
        assert drv.sum() > 400 and (ln.sum() > 30) == (name == "a")
        assert np.array_equal(m[8:56] & 1, drv), name
        assert np.array_equal(m[8:56] >> 1, ln), name


def _nearest_colour(img_rgb):
    palette = np.array([BG, PAD, BLUE[::-1], GREEN[::-1]], np.float32)  # RGB, as Format returns
    return np.argmin(((img_rgb[:, :, None, :].astype(np.float32) - palette) ** 2).sum(-1), -1)


def test_polygons_follow_mosaic_perspective_and_flips(tmp_path):
    """(b) with mosaic, affine + perspective and both flips, every mask bit matches the colour drawn
    in the augmented image, except within 1 px of the colour's edge (the image is interpolated, the
    polygons truncated to pixels) and on the frame's outermost pixels (Ultralytics clamps polygon
    points that leave the frame onto it, as the official code does)."""
    from ultralytics.cfg import get_cfg

    data = _scene(tmp_path, 96, 128)
    hyp = get_cfg(overrides=dict(imgsz=128, mosaic=1.0, degrees=10, translate=0.1, scale=0.3, shear=2,
                                 perspective=0.0005, fliplr=0.5, flipud=0.5, hsv_h=0, hsv_s=0, hsv_v=0))
    ds = MultiTaskDataset(img_path=str(tmp_path / "images/val2017"), imgsz=128, augment=True, hyp=hyp,
                          data=data, batch_size=2)
    pickle.loads(pickle.dumps(ds.transforms))  # hooked transforms still travel to dataloader workers
    k = np.ones((3, 3), np.uint8)
    frame = np.ones((128, 128), bool)
    frame[1:-1, 1:-1] = False
    seen = np.zeros(3, int)
    for seed in range(6):
        random.seed(seed)
        np.random.seed(seed)
        item = ds[seed % 2]
        m = item["semantic_mask"].numpy()
        lab = _nearest_colour(item["img"].permute(1, 2, 0).numpy())
        for colour, got in ((1, m == 255), (2, (m != 255) & (m & 1 > 0)), (3, (m != 255) & (m & 2 > 0))):
            fg = (lab == colour).astype(np.uint8)
            band = (cv2.dilate(fg, k) > 0) & (cv2.erode(fg, k) == 0)
            wrong = (got != fg.astype(bool)) & ~band & ~frame
            assert not wrong.any(), (seed, colour, np.argwhere(wrong)[:5].tolist())
            seen[colour - 1] += fg.sum()
    assert (seen > 200).all(), seen  # padding, drivable and lane all took part
    batch = ds.collate_fn([ds[0], ds[1]])  # the polygons were consumed by MultiTaskFormat
    assert tuple(batch["semantic_mask"].shape) == (2, 128, 128) and not {"seg_instances", "seg_cls"} & set(batch)


def test_polygons_refuse_cutmix(tmp_path):
    from ultralytics.cfg import get_cfg

    hyp = get_cfg(overrides=dict(imgsz=64, cutmix=0.5))
    with pytest.raises(ValueError, match="cutmix=0.5 cannot move polygon"):
        MultiTaskDataset(img_path=str(tmp_path / "images/val2017"), imgsz=64, augment=True, hyp=hyp,
                         data=_scene(tmp_path, 48, 64), batch_size=2)
