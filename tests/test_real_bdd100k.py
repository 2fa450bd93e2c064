"""BDD100K on real files (issue 9): the official det_20 JSON through the converter (counts checked
against the JSON), the real lane masks (255 = no lane) through the multi-task reader, and the
A-YOLOM predictor on the 13 real frames with the overlays saved."""
import copy
import json
import runpy
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ultralytics")

import cv2  # noqa: E402
from PIL import Image  # noqa: E402

from lsdense.bdd100k import BDD_CATEGORIES, convert_det_json  # noqa: E402
from lsdense.yolo.checks import check_label_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "realdata"
LABELS = REAL / "bdd100k_labels_only"
FRAMES = REAL / "bdd100k_real" / "images" / "100k" / "val"
pytestmark = pytest.mark.skipif(not LABELS.is_dir() or not FRAMES.is_dir(),
                                reason=f"real data not found at {REAL} (ships next to the repo)")


def _json(split):
    return json.loads((LABELS / "labels" / "det_20" / f"det_{split}.json").read_text())


def _rows(folder):
    return {p.stem: check_label_file(p) for p in sorted(Path(folder).glob("*.txt"))}


@pytest.mark.parametrize("split", ["train", "val"])
def test_real_det20_json_converts_with_counts_matching_the_json(split, tmp_path):
    frames = _json(split)
    js = LABELS / "labels" / "det_20" / f"det_{split}.json"
    boxes = Counter(lb["category"] for fr in frames for lb in fr.get("labels") or [] if lb.get("box2d"))
    assert sum(boxes.values()) == {"train": 3241, "val": 34}[split]  # 3,275 boxes in all (README)

    res = convert_det_json(js, FRAMES, tmp_path / "all", "bdd10")
    rows = _rows(tmp_path / "all")
    assert res.frames == len(rows) == len(frames) == {"train": 202, "val": 1}[split]
    assert res.boxes == sum(len(r) for r in rows.values()) == sum(boxes.values())
    assert res.not_selected == Counter() and res.degenerate == 0
    for fr in frames:  # every frame, every box, in order and class
        got = rows[Path(fr["name"]).stem]
        assert [int(r[0]) for r in got] == [BDD_CATEGORIES.index(lb["category"]) for lb in fr["labels"]]
    b = frames[0]["labels"][0]["box2d"]  # the first box, by hand: normalised by 1280 x 720
    x1, x2 = max(0.0, b["x1"]), min(1280.0, b["x2"])
    assert rows[Path(frames[0]["name"]).stem][0][1:] == pytest.approx(
        [(x1 + x2) / 2560, (b["y1"] + b["y2"]) / 1440, (x2 - x1) / 1280, (b["y2"] - b["y1"]) / 720],
        abs=1e-6)

    res = convert_det_json(js, FRAMES, tmp_path / "ayolom", "ayolom")  # A-YOLOM: vehicle only
    vehicles = sum(boxes[c] for c in ("car", "bus", "truck", "train"))
    assert res.boxes == sum(len(r) for r in _rows(tmp_path / "ayolom").values()) == vehicles
    assert res.not_selected == Counter({c: n for c, n in boxes.items()
                                        if c not in ("car", "bus", "truck", "train")})


def test_converter_handles_each_real_json_quirk_kind(tmp_path):
    """The official release has frames without ``labels`` (or null), ``poly2d`` lane and
    drivable-area entries without ``box2d``, and boxes past the border; each is built here
    from a real frame of det_val.json."""
    real = _json("val")[0]
    lane = {"id": 99, "category": "lane", "box2d": None, "attributes": {"laneDirection": "parallel"},
            "poly2d": [{"vertices": [[0, 700], [600, 400]], "types": "LL", "closed": False}]}
    area = {"id": 100, "category": "drivable area", "poly2d": [{"vertices": [[0, 0], [5, 5], [0, 5]],
                                                                 "types": "LLL", "closed": True}]}
    past = copy.deepcopy(real["labels"][0])
    past["box2d"] = {"x1": -12.5, "y1": 700.0, "x2": 50.0, "y2": 731.0}  # left and bottom border
    outside = copy.deepcopy(real["labels"][0])
    outside["box2d"] = {"x1": 1290.0, "y1": 10.0, "x2": 1300.0, "y2": 20.0}
    frames = [dict(real, labels=real["labels"] + [lane, area, past, outside]),
              {"name": "no-labels.jpg", "attributes": {}},
              {"name": "null-labels.jpg", "labels": None}]
    js = tmp_path / "det_val.json"
    js.write_text(json.dumps(frames))
    res = convert_det_json(js, FRAMES, tmp_path / "out", "bdd10")
    assert res.frames == 3 and res.frames_without_labels == 2
    assert res.without_box2d == Counter({"lane": 1, "drivable area": 1})
    assert res.boxes == len(real["labels"]) + 1 and res.clipped == 1 and res.degenerate == 1
    assert (tmp_path / "out" / "no-labels.txt").read_text() == ""  # a background image
    rows = check_label_file(tmp_path / "out" / f"{Path(real['name']).stem}.txt")
    assert rows[-1][1:] == pytest.approx([25 / 1280, 710 / 720, 50 / 1280, 20 / 720], abs=1e-6)
    with pytest.raises(ValueError, match=r"frame 'x.jpg', label 7: box2d .* needs numeric"):
        (tmp_path / "bad.json").write_text(json.dumps([{"name": "x.jpg", "labels": [
            {"id": 7, "category": "car", "box2d": {"x1": "a", "y1": 0, "x2": 1, "y2": 1}}]}]))
        convert_det_json(tmp_path / "bad.json", FRAMES, tmp_path / "bad", "bdd10")


def test_converter_normalises_by_the_displayed_size_of_an_exif_rotated_frame(tmp_path):
    """A frame stored sideways with EXIF orientation 6 is decoded upright (720 x 1280) by
    cv2, hence by Ultralytics; its boxes must be normalised by that size, not the stored one."""
    src = next(FRAMES.glob("*.jpg"))
    im = Image.open(src).transpose(Image.Transpose.ROTATE_90)  # stored sideways: 720 wide, 1280 high
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": shown upright, 1280 x 720
    im.save(tmp_path / "f.jpg", exif=exif.tobytes())
    shown = cv2.imread(str(tmp_path / "f.jpg")).shape[:2]
    assert shown == (720, 1280)  # what every reader of ours sees
    js = tmp_path / "det.json"
    js.write_text(json.dumps([{"name": "f.jpg", "labels": [
        {"category": "car", "box2d": {"x1": 0, "y1": 0, "x2": 640, "y2": 360}}]}]))
    res = convert_det_json(js, tmp_path, tmp_path / "out", "bdd10")
    assert res.image_sizes_read == 1
    assert check_label_file(tmp_path / "out" / "f.txt") == [[2, 0.25, 0.25, 0.5, 0.5]]


def test_convert_tool_on_the_real_label_files(tmp_path, capsys):
    root = tmp_path / "bdd100k"
    shutil.copytree(LABELS / "labels", root / "labels")
    (root / "images/100k/train").mkdir(parents=True)
    shutil.copytree(FRAMES, root / "images/100k/val")
    tool = runpy.run_path(str(ROOT / "tools" / "convert_bdd100k.py"), run_name="lsdense_tool")["main"]
    assert tool([str(root), "--classes", "ayolom"]) == 0
    out = capsys.readouterr().out
    assert "train: 202 frames (0 without labels), 2812 boxes written" in out
    assert "not selected by the class map: motorcycle: 119, pedestrian: 191, rider: 119" in out
    assert len(list((root / "labels/100k/train").glob("*.txt"))) == 202
    assert (root / "bdd100k.yaml").is_file() and (root / "bdd100k-det.yaml").is_file()


# ---------------------------------------------------------------- lane masks


def _bdd_root_with_real_lanes(tmp):
    """The official layout around the 4 real lane masks. Their frames are not in the sample:
    each gets a grey 1280 x 720 stand-in image and an all-background drivable mask (2)."""
    root = Path(tmp)
    masks = sorted((LABELS / "lane" / "masks" / "val").glob("*.png"))
    for d in ("images/100k/val", "drivable/masks/val", "lane/masks/val", "labels/100k/val"):
        (root / d).mkdir(parents=True)
    for m in masks:
        cv2.imwrite(str(root / f"images/100k/val/{m.stem}.jpg"), np.full((720, 1280, 3), 128, np.uint8))
        cv2.imwrite(str(root / f"drivable/masks/val/{m.stem}.png"), np.full((720, 1280), 2, np.uint8))
        shutil.copy(m, root / "lane/masks/val" / m.name)
    return root, masks


def test_real_lane_masks_read_by_the_multitask_dataset(tmp_path):
    """Official lane masks: 255 = no lane; every other value (0 included: its bits code
    direction and style) is lane. The reader users run must count exactly those pixels."""
    from lsdense.bdd100k import write_dataset_yamls
    from lsdense.yolo.multitask.data import MultiTaskDataset
    from ultralytics.cfg import get_cfg

    import yaml

    root, masks = _bdd_root_with_real_lanes(tmp_path / "bdd")
    data = yaml.safe_load(write_dataset_yamls(root)["multitask_yaml"].read_text()) | {"channels": 3}
    ds = MultiTaskDataset(img_path=str(root / "images/100k/val"), imgsz=640, augment=False,
                          hyp=get_cfg(overrides={"imgsz": 640}), data=data, batch_size=1)
    assert len(ds) == 4
    zero_lane = 0
    for i in range(len(ds)):
        raw = np.array(Image.open(masks[i]))
        assert Path(ds.im_files[i]).stem == masks[i].stem and raw.shape == (720, 1280)
        packed = ds.load_packed_mask(i)
        lane, drivable = (packed >> 1) & 1, packed & 1
        assert lane.sum() == (raw != 255).sum() > 0 and drivable.sum() == 0
        zero_lane += int((raw == 0).sum())
        item = ds[i]  # resized with the image to 640 x 360 (nearest), letterboxed to 640 x 640
        sem = item["semantic_mask"]
        assert tuple(sem.shape) == tuple(item["img"].shape[1:]) == (640, 640)
        valid = sem != 255  # the letterbox padding is ignored
        assert int(valid.sum()) == 360 * 640
        frac = float(((sem[valid] >> 1) & 1).float().mean())  # thin lanes survive the resize
        assert frac == pytest.approx((raw != 255).mean(), rel=0.15)
    assert zero_lane == 351  # value 0 is a lane class, not background (fe189115-9981a740.png)


# ---------------------------------------------------------------- A-YOLOM on the real frames


def test_ayolom_predicts_the_13_real_frames_and_saves_overlays(tmp_path):
    import torch
    from lsdense.yolo import AYOLOM
    from lsdense.yolo.demo import DRIVABLE_BGR, LANE_BGR, draw_multitask, predict_to_files

    torch.manual_seed(0)
    model = AYOLOM(str(ROOT / "configs" / "yolo" / "ayolom-n-lolvit_s.yaml"))
    frames = sorted(FRAMES.glob("*.jpg"))
    assert len(frames) == 13
    files = predict_to_files(model, frames, tmp_path / "overlays", imgsz=320)
    assert [f.stem for f in files] == [f.stem for f in frames]
    for f in files:
        assert cv2.imread(str(f)).shape == (720, 1280, 3)
    # the overlay itself: blended exactly where a mask is set, untouched elsewhere
    r = model.predict(str(frames[0]), imgsz=320, verbose=False)[0]
    assert r.orig_shape == (720, 1280) and set(r.seg_masks) == {"drivable", "lane"}
    assert all(tuple(m.shape) == (720, 1280) for m in r.seg_masks.values())
    drv = torch.zeros(720, 1280, dtype=torch.bool)
    drv[400:, :] = True
    lane = torch.zeros_like(drv)
    lane[500:520, 100:1100] = True
    r.seg_masks = {"drivable": drv, "lane": lane}
    base = r.plot(masks=False).astype(np.float32)
    out = draw_multitask(r, alpha=0.5).astype(np.float32)
    assert np.array_equal(out[:400], base[:400])
    assert np.abs(out[600, 50] - (base[600, 50] + np.array(DRIVABLE_BGR)) / 2).max() <= 1
    lane_px = (base[510, 600] + np.array(DRIVABLE_BGR)) / 2  # drivable first, lane on top
    assert np.abs(out[510, 600] - np.round((np.round(lane_px) + np.array(LANE_BGR)) / 2)).max() <= 1


def test_multitask_reader_takes_an_exif_rotated_frame_at_its_displayed_size(tmp_path):
    """A real frame stored sideways (EXIF orientation 6) with masks at its displayed size
    (1280 x 720, what cv2 decodes) is accepted, and image and masks line up."""
    from lsdense.bdd100k import write_dataset_yamls
    from lsdense.yolo.multitask.data import MultiTaskDataset
    from ultralytics.cfg import get_cfg

    import yaml

    root, masks = _bdd_root_with_real_lanes(tmp_path / "bdd")
    for m in masks[1:]:
        for f in root.rglob(f"{m.stem}.*"):
            f.unlink()
    img = root / f"images/100k/val/{masks[0].stem}.jpg"
    im = Image.open(next(FRAMES.glob("*.jpg"))).transpose(Image.Transpose.ROTATE_90)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(img, exif=exif.tobytes())
    data = yaml.safe_load(write_dataset_yamls(root)["multitask_yaml"].read_text()) | {"channels": 3}
    ds = MultiTaskDataset(img_path=str(root / "images/100k/val"), imgsz=320, augment=False,
                          hyp=get_cfg(overrides={"imgsz": 320}), data=data, batch_size=1)
    assert ds.labels[0]["shape"] == (720, 1280)
    item = ds[0]
    assert item["img"].shape[1:] == item["semantic_mask"].shape


# ---------------------------------------------------------------- mask encodings (issue 18)

BDD_DRIVABLE_BGR = {0: (86, 94, 219), 1: (219, 211, 86)}  # BDD100K colormaps: direct, alternative


def _encode(task, ids, enc):
    """A mask in one public encoding from BDD100K ids (drivable: 0/1/2; lane: 255 = none)."""
    fg = ids != (2 if task == "drivable" else 255)
    if enc == "bdd":
        return ids
    if enc == "0/1":
        return fg.astype(np.uint8)
    if enc == "0/255":  # YOLOP da_seg / ll_seg
        return (fg * 255).astype(np.uint8)
    out = np.zeros((*ids.shape, 3), np.uint8)  # colour map, black background
    for v, bgr in BDD_DRIVABLE_BGR.items():
        out[ids == v] = bgr
    if task == "lane":
        out[fg] = (0, 0, 255)
    return out


def _multitask_ds(root, **keys):
    import yaml
    from lsdense.bdd100k import write_dataset_yamls
    from lsdense.yolo.multitask.data import MultiTaskDataset
    from ultralytics.cfg import get_cfg

    data = yaml.safe_load(write_dataset_yamls(root)["multitask_yaml"].read_text()) | {"channels": 3}
    return MultiTaskDataset(img_path=str(root / "images/100k/val"), imgsz=640, augment=False,
                            hyp=get_cfg(overrides={"imgsz": 640}), data=data | keys, batch_size=1)


@pytest.mark.parametrize("enc", ["bdd", "0/1", "0/255", "colour"])
def test_mask_encoding_detected_from_values_never_inverted(enc, tmp_path):
    """Real BDD100K lane masks and a drivable area (direct ego lane, alternative side) written in
    each public encoding (BDD100K ids / bitmasks, 0/1, YOLOP 0/255, colour maps): the reader
    finds the encoding from the values and reads exactly the true foreground."""
    root, masks = _bdd_root_with_real_lanes(tmp_path / "bdd")
    truth = {}
    for m in masks:
        lane = cv2.imread(str(m), cv2.IMREAD_UNCHANGED)
        drivable = np.full(lane.shape, 2, np.uint8)
        drivable[450:, 200:1080] = 1
        drivable[450:, 500:780] = 0
        for task, ids in (("drivable", drivable), ("lane", lane)):
            cv2.imwrite(str(root / f"{task}/masks/val/{m.stem}.png"), _encode(task, ids, enc))
        truth[m.stem] = (drivable != 2, lane != 255)
    ds = _multitask_ds(root)
    for i in range(len(ds)):
        packed = ds.load_packed_mask(i)
        drivable, lane = truth[Path(ds.im_files[i]).stem]
        assert np.array_equal(packed & 1, drivable) and np.array_equal((packed >> 1) & 1, lane)
        assert drivable.mean() > 0.1 and lane.sum() > 0  # foreground exists: agreement is real


def test_mask_encoding_refusals_are_one_line(tmp_path):
    """An explicit rule that would invert the target, and values of no known encoding, are
    refused with one line naming the encoding and the setting that reads it."""
    root, masks = _bdd_root_with_real_lanes(tmp_path / "bdd")
    for m in masks:  # YOLOP 0/255 drivable masks: 255 = drivable, a quarter of the frame
        d = np.zeros((720, 1280), np.uint8)
        d[540:] = 255
        cv2.imwrite(str(root / f"drivable/masks/val/{m.stem}.png"), d)
    with pytest.raises(ValueError) as err:
        _multitask_ds(root, drivable_fg=[0, 1])  # the BDD100K id rule: 0 = direct drivable
    msg = str(err.value)
    assert "\n" not in msg and "inverted" in msg and "YOLOP da_seg" in msg and "drivable_fg: auto" in msg
    assert np.array_equal(_multitask_ds(root, drivable_fg=[255]).load_packed_mask(0) & 1, d == 255)
    for m in masks:
        cv2.imwrite(str(root / f"drivable/masks/val/{m.stem}.png"), np.full((720, 1280), 7, np.uint8))
    with pytest.raises(ValueError, match=r"^drivable masks .* hold values \[7\] .* set drivable_fg") as err:
        _multitask_ds(root)
    assert "\n" not in str(err.value)
