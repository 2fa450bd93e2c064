"""Exports of annotation tools (issue 21): each quirk is built into a copy of the real COCO / VOC
files of ../shared/realdata, the pre-flight runs over the shipped real-data config, and where the
quirk reads right mmdet's own CocoMetric / VOCMetric scores the ground truth fed back as
predictions at exactly 1.000; otherwise the pre-flight stops with one line naming file, field
and fix."""
from __future__ import annotations

import copy
import functools
import json
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("mmdet")

from lsdense.mm.checks import PreflightError  # noqa: E402
from realdata import REALDATA, realdata_root  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("LSDENSE_REALDATA") or REALDATA)  # absent: every test here skips
COCO = REAL / "coco_real"
VOC = REAL / "voc0712_real"
pytestmark = pytest.mark.skipif(not (COCO.is_dir() and VOC.is_dir()),
                                reason="../shared/realdata not present")


@functools.lru_cache(maxsize=None)
def _parsed(path: str):
    from mmengine.config import Config

    return Config.fromfile(path)  # seconds per parse: once per config, copies per test


def _cfg(name: str, **updates):
    cfg = copy.deepcopy(_parsed(str(REPO / "configs" / "real" / name)))
    cfg.merge_from_dict(updates)
    return cfg


def _build(ds_cfg):
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    return DATASETS.build(ds_cfg)


def _echo_coco(cfg) -> float:
    """bbox mAP of mmdet's CocoMetric (from cfg.test_evaluator) on the dataset's ground truth."""
    import torch
    from mmdet.registry import METRICS

    ds = _build(cfg.test_dataloader.dataset)
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = ds.metainfo
    samples = []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        inst = [x for x in info["instances"] if not x["ignore_flag"]]
        samples.append(dict(img_id=info["img_id"], ori_shape=(info["height"], info["width"]),
                            pred_instances=dict(
                                bboxes=torch.tensor([x["bbox"] for x in inst]).reshape(-1, 4),
                                scores=torch.ones(len(inst)),
                                labels=torch.tensor([x["bbox_label"] for x in inst],
                                                    dtype=torch.long))))
    metric.process({}, samples)
    return metric.evaluate(len(samples))["coco/bbox_mAP"]


def _echo_voc(cfg) -> float:
    """mAP of mmdet's VOCMetric (from cfg.test_evaluator) on the dataset's ground truth."""
    import torch
    from mmdet.registry import METRICS

    ds = _build(cfg.test_dataloader.dataset)
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = ds.metainfo

    def inst(info, ignore):
        xs = [x for x in info["instances"] if x["ignore_flag"] == ignore]
        return dict(bboxes=torch.tensor([x["bbox"] for x in xs], dtype=torch.float).reshape(-1, 4),
                    labels=torch.tensor([x["bbox_label"] for x in xs], dtype=torch.long),
                    scores=torch.ones(len(xs)))

    samples = []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        samples.append(dict(gt_instances=inst(info, 0), ignored_instances=inst(info, 1),
                            pred_instances=inst(info, 0)))
    metric.process({}, samples)
    return metric.evaluate(len(samples))["pascal_voc/mAP"]


# ---------------------------------------------------------------------------------------------
# COCO: each quirk edits the real instances JSON (d) and/or the image folder (img_dir)

def _poly(d):
    return [a for a in d["annotations"] if not a["iscrowd"]]


def _past_border(d, img_dir):
    im = {i["id"]: i for i in d["images"]}
    a = _poly(d)[0]
    a["bbox"][2] = im[a["image_id"]]["width"] + 50 - a["bbox"][0]


def _ext(d, img_dir):
    name = d["images"][0]["file_name"]
    os.rename(img_dir / name, img_dir / (Path(name).stem + ".jpeg"))


def _str_ids(d, img_dir):
    for x in d["images"]:
        x["id"] = str(x["id"])
    for a in d["annotations"]:
        a["image_id"] = str(a["image_id"])


def _name_ids(d, img_dir):
    """Image ids that are file stems (cocodataset/cocoapi#373, faster_coco_eval#58)."""
    new = {x["id"]: "img_" + Path(x["file_name"]).stem for x in d["images"]}
    for x in d["images"]:
        x["id"] = new[x["id"]]
    for a in d["annotations"]:
        a["image_id"] = new[a["image_id"]]


def _cats_from_0(d, img_dir):
    for x in d["categories"]:
        x["id"] -= 1
    for a in d["annotations"]:
        a["category_id"] -= 1


def _ids_from_0(d, img_dir):
    new = {x["id"]: k for k, x in enumerate(d["images"])}
    for x in d["images"]:
        x["id"] = new[x["id"]]
    for a in d["annotations"]:
        a["image_id"] = new[a["image_id"]]


def _labelme2coco(d, img_dir):
    """What labelme's labelme2coco.py writes: image and annotation ids from 0 and a
    _background_ category 0 (wkentaro/labelme#377)."""
    _ids_from_0(d, img_dir)
    COCO_READ["ann_ids_from_0"](d, img_dir)
    COCO_READ["background_category_0"](d, img_dir)


COCO_READ = {
    # quirk: edit(data, img_dir) -- every one scores 1.000 after the pre-flight
    "ann_ids_from_0": lambda d, p: [a.update(id=k) for k, a in enumerate(d["annotations"])],
    "ann_ids_repeated": lambda d, p: d["annotations"][1].update(id=d["annotations"][0]["id"]),
    "background_category_0": lambda d, p: d["categories"].insert(
        0, {"id": 0, "name": "_background_", "supercategory": ""}),
    "category_ids_from_0": _cats_from_0,
    "category_name_spaces": lambda d, p: d["categories"][0].update(name="person "),
    "iscrowd_bool": lambda d, p: [a.update(iscrowd=bool(a["iscrowd"])) for a in d["annotations"]],
    "iscrowd_missing": lambda d, p: [a.pop("iscrowd") for a in _poly(d)],
    "segmentation_empty": lambda d, p: [a.update(segmentation=[]) for a in _poly(d)],
    "segmentation_flat": lambda d, p: [a.update(segmentation=a["segmentation"][0])
                                       for a in _poly(d)],
    "bbox_missing": lambda d, p: [a.pop("bbox") for a in _poly(d)],
    "area_zero": lambda d, p: [a.update(area=0) for a in d["annotations"]],
    "box_past_border": _past_border,
    "image_ids_strings": _str_ids,
    "width_height_missing": lambda d, p: [(x.pop("width"), x.pop("height")) for x in d["images"]],
    "file_name_other_extension": _ext,
    "file_name_windows_path": lambda d, p: d["images"][0].update(
        file_name="C:\\Users\\me\\export\\" + d["images"][0]["file_name"]),
    "images_without_annotations": lambda d, p: None,  # one of the 7 real photos has none
    "image_ids_from_0": _ids_from_0,
    "image_ids_names": _name_ids,
    "labelme2coco": _labelme2coco,
}
AS_IS = {"category_ids_from_0", "images_without_annotations", "box_past_border",
         "image_ids_from_0", "image_ids_names"}  # mmdet reads them right as they are

_first = lambda d: _poly(d)[0]  # noqa: E731


def _ambiguous(d, img_dir):
    """file_name x.jpeg where x.jpg and x.png are both on disk."""
    stem = Path(d["images"][0]["file_name"]).stem
    shutil.copy(img_dir / f"{stem}.jpg", img_dir / f"{stem}.png")
    d["images"][0]["file_name"] = f"{stem}.jpeg"
COCO_STOP = {
    # quirk: (edit, the one line's field, a word of its fix)
    "annotation_of_missing_image": (lambda d, p: _first(d).update(image_id=999),
                                    "annotations[].image_id", "add those images"),
    "bbox_negative_width": (lambda d, p: _first(d)["bbox"].__setitem__(2, -5.0),
                            "annotations[].bbox", "not [x1, y1, x2, y2]"),
    "bbox_zero_area": (lambda d, p: _first(d)["bbox"].__setitem__(3, 0),
                       "annotations[].bbox", "delete or redraw"),
    "bbox_outside_image": (lambda d, p: _first(d)["bbox"].__setitem__(0, 5000.0),
                           "annotations[].bbox", "delete or redraw"),
    "used_background_category": (lambda d, p: (d["categories"].insert(
        0, {"id": 0, "name": "_background_"}), _first(d).update(category_id=0)),
        "categories[].name", "delete those annotations"),
    "category_id_unknown": (lambda d, p: _first(d).update(category_id=555),
                            "annotations[].category_id", "add the category"),
    "file_name_ambiguous": (_ambiguous, "images[].file_name", "exact name"),
    "image_size_differs": (lambda d, p: d["images"][0].update(width=100),
                           "images[].width/height", "re-export"),
    "rle_size_wrong": (lambda d, p: [a["segmentation"].update(size=[1, 1])
                                     for a in d["annotations"] if a["iscrowd"]],
                       "annotations[].segmentation.size", "re-export the masks"),
    "repeated_image_ids": (lambda d, p: d["images"].append(dict(d["images"][0])),
                           "images[].id", "its own id"),
}


def _coco_case(tmp_path, edit):
    root = tmp_path / "coco"
    shutil.copytree(COCO / "val2017", root / "val2017")
    data = json.loads((COCO / "annotations" / "instances_val2017.json").read_text())
    edit(data, root / "val2017")
    ann = root / "annotations" / "instances_val2017.json"
    ann.parent.mkdir()
    ann.write_text(json.dumps(data))
    cfg = _cfg("retinanet_lsnet_t_cocoreal.py", **{
        "test_dataloader.dataset.data_root": f"{root}/", "test_evaluator.ann_file": str(ann),
        "work_dir": str(tmp_path / "work")})
    return cfg, ann


@pytest.mark.parametrize("quirk", sorted(COCO_READ))
def test_coco_quirk_reads_right(tmp_path, quirk):
    from lsdense.mm.annotations import check_annotations

    cfg, ann = _coco_case(tmp_path, COCO_READ[quirk])
    check_annotations(cfg, "test")
    fixed = cfg.test_dataloader.dataset.ann_file
    assert (fixed == "annotations/instances_val2017.json") if quirk in AS_IS else \
        fixed.startswith(str(tmp_path / "work" / "fixed_annotations"))
    assert cfg.test_evaluator.ann_file == (str(ann) if quirk in AS_IS else fixed)  # one file
    assert _echo_coco(cfg) == 1.0
    if quirk in ("ann_ids_from_0", "labelme2coco"):  # the bug it fixes: stock mmdet on it
        stock, _ = _coco_case(tmp_path / "stock", COCO_READ[quirk])
        assert _echo_coco(stock) < 0.96


@pytest.mark.parametrize("quirk", sorted(COCO_STOP))
def test_coco_quirk_stops_with_one_line(tmp_path, quirk):
    from lsdense.mm.annotations import check_annotations

    edit, field, fix = COCO_STOP[quirk]
    cfg, ann = _coco_case(tmp_path, edit)
    with pytest.raises(PreflightError) as err:
        check_annotations(cfg, "test")
    lines = str(err.value).splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{ann}: {field}: 1 x ") and fix in lines[0]


def test_coco_problems_reported_together_and_masks_need_polygons(tmp_path):
    from lsdense.mm.annotations import check_annotations

    def edit(d, p):
        _poly(d)[1]["bbox"][2] = -5.0
        COCO_STOP["category_id_unknown"][0](d, p)
        d["annotations"][-1]["segmentation"] = []

    cfg, ann = _coco_case(tmp_path, edit)
    cfg.test_evaluator.metric = ["bbox", "segm"]
    with pytest.raises(PreflightError) as err:
        check_annotations(cfg, "test")
    lines = str(err.value).splitlines()
    assert sorted(ln.split(": ")[1] for ln in lines) == [
        "annotations[].bbox", "annotations[].category_id", "annotations[].segmentation"]


# ---------------------------------------------------------------------------------------------
# VOC: each quirk edits the XML of VOC2007/000001 (dog, person; both truncated)

def _xml_edit(old: str, new: str, count: int = 1):
    return lambda text: text.replace(old, new, count)


VOC_READ = {
    "difficult_empty": _xml_edit("<difficult>0</difficult>", "<difficult/>", 2),
    "difficult_missing": _xml_edit("<difficult>0</difficult>", "", 2),
    "difficult_true_false": _xml_edit("<difficult>0</difficult>", "<difficult>False</difficult>"),
    "truncated_empty": _xml_edit("<truncated>1</truncated>", "<truncated></truncated>", 2),
    "truncated_missing": _xml_edit("<truncated>1</truncated>", "", 2),
    "float_coordinates": _xml_edit("<xmin>48</xmin>", "<xmin>48.5</xmin>"),
    "name_spaces": _xml_edit("<name>dog</name>", "<name> dog </name>"),
    "size_zero": _xml_edit("<width>353</width>", "<width>0</width>"),
    "box_past_border": _xml_edit("<xmax>352</xmax>", "<xmax>400</xmax>"),
}
VOC_STOP = {
    "object_without_name": (_xml_edit("<name>dog</name>", ""), "object/name", "add the class"),
    "xmin_after_xmax": (_xml_edit("<xmin>48</xmin>", "<xmin>250</xmin>"), "object/bndbox",
                        "swap the corners"),
    "zero_size_box": (_xml_edit("<xmax>195</xmax>", "<xmax>48.5</xmax>"), "object/bndbox",
                      "delete or redraw"),
    "name_case": (_xml_edit("<name>dog</name>", "<name>Dog</name>"), "object/name", "rename"),
    "difficult_word": (_xml_edit("<difficult>0</difficult>", "<difficult>maybe</difficult>"),
                       "object/difficult", "write 0 or 1"),
}


def _voc_case(tmp_path, edit, png=False):
    root = tmp_path / "VOCdevkit"
    shutil.copytree(VOC / "VOCdevkit", root)
    xml = root / "VOC2007" / "Annotations" / "000001.xml"
    xml.write_text(edit(xml.read_text()))
    if png:
        jpg = root / "VOC2007" / "JPEGImages" / "000001.jpg"
        jpg.rename(jpg.with_suffix(".png"))
    cfg = _cfg("retinanet_lsnet_t_vocreal.py", work_dir=str(tmp_path / "work"))
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        for ds in cfg[loader].dataset.datasets:
            ds.data_root = f"{root}/"
    return cfg, root


@pytest.mark.parametrize("quirk", sorted(VOC_READ))
def test_voc_quirk_reads_right(tmp_path, quirk):
    from lsdense.mm.annotations import check_annotations

    cfg, _ = _voc_case(tmp_path, VOC_READ[quirk])
    if quirk == "difficult_empty":  # the bug it fixes: stock mmdet stops in int(None)
        with pytest.raises(TypeError, match="NoneType"):
            _echo_voc(copy.deepcopy(cfg))
    check_annotations(cfg, "test")
    assert _echo_voc(cfg) == 1.0


@pytest.mark.parametrize("quirk", sorted(VOC_STOP) + ["png_image"])
def test_voc_quirk_stops_with_one_line(tmp_path, quirk):
    from lsdense.mm.annotations import check_annotations

    edit, field, fix = VOC_STOP.get(quirk, (lambda t: t, "JPEGImages", "convert them to JPEG"))
    cfg, root = _voc_case(tmp_path, edit, png=quirk == "png_image")
    with pytest.raises(PreflightError) as err:
        check_annotations(cfg, "train")  # train and val read the same lists: reported once
    lines = str(err.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{root}/VOC2007/Annotations: {field}: 1 x ") and fix in lines[0]


# ---------------------------------------------------------------------------------------------
# YOLO txt: each quirk edits the real label file of coco8's 000000000009.jpg (8 boxes); the
# check must agree with Ultralytics' own reader (verify_image_label): same boxes where it reads
# the file, one line naming file:row where it would drop the image (or keep a box of no area).

YOLO = REAL / "coco8_yolo"
_POLY = "45 0.2 0.6 0.7 0.6 0.7 0.9 0.2 0.9"  # a polygon row: its box is 0.45 0.75 0.5 0.3


YOLO_READ = {
    "utf8_bom": lambda t: "\ufeff" + t,
    "crlf_and_blank_lines": lambda t: t.replace("\n", "\r\n") + "\r\n\r\n",
    "polygon_rows": lambda t: "\n".join([_POLY] * 2 + [_POLY.replace("45", "50")]) + "\n",
    "coordinates_within_1_percent": lambda t: t.replace("0.955609", "1.005", 1),
    "class_written_as_float": lambda t: t.replace("45 ", "45.0 ", 1),
    "duplicate_rows": lambda t: t + t.splitlines()[0] + "\n",
}
YOLO_STOP = {
    # quirk: (edit, row, a word of the problem, Ultralytics drops the image)
    "polygon_and_box_rows_mixed": (lambda t: t + _POLY + "\n", None, "mixes polygon rows", True),
    "six_values": (lambda t: t.replace("0.5955", "0.5955 1", 1), 1, "6 values", True),
    "polygon_odd_coordinate": (lambda t: _POLY + " 0.5\n", 1, "an odd count", True),
    "not_normalised": (lambda t: t.replace("0.955609", "95.5", 1), 1, "normalised", True),
    "class_name_not_id": (lambda t: t.replace("45 ", "bowl ", 1), 1, "non-numeric", True),
    "zero_size_box": (lambda t: t.replace("0.5955", "0", 1), 1, "must be > 0", False),
}


def _yolo_pair(tmp_path, edit):
    stem = "000000000009"
    img = tmp_path / "images" / f"{stem}.jpg"
    img.parent.mkdir()
    shutil.copy(YOLO / "images" / "train" / f"{stem}.jpg", img)
    lb = tmp_path / "labels" / f"{stem}.txt"
    lb.parent.mkdir()
    lb.write_bytes(edit((YOLO / "labels" / "train" / f"{stem}.txt").read_text()).encode())
    from ultralytics.data.utils import verify_image_label

    out = verify_image_label((str(img), str(lb), "", False, 80, 0, 0, False))
    return lb, out


@pytest.mark.parametrize("quirk", sorted(YOLO_READ))
def test_yolo_quirk_reads_as_ultralytics(tmp_path, quirk):
    import numpy as np

    from lsdense.yolo.checks import check_label_dir, check_label_file

    lb, out = _yolo_pair(tmp_path, YOLO_READ[quirk])
    assert out[8] == 0, out[9]  # Ultralytics reads it (not corrupt)
    assert check_label_dir(lb.parent, nc=80) == 1
    ours = np.unique(np.array(check_label_file(lb, nc=80), dtype=np.float32), axis=0)
    np.testing.assert_allclose(ours, np.unique(out[1], axis=0), atol=1e-6)


@pytest.mark.parametrize("quirk", sorted(YOLO_STOP))
def test_yolo_quirk_stops_with_one_line(tmp_path, quirk):
    from lsdense.yolo.checks import check_label_dir

    edit, row, word, dropped = YOLO_STOP[quirk]
    lb, out = _yolo_pair(tmp_path, edit)
    assert out[8] == int(dropped), out[9]
    with pytest.raises(ValueError) as err:
        check_label_dir(lb.parent, nc=80)
    lines = str(err.value).splitlines()
    assert lines[0] == f"1 bad label row(s) under {lb.parent}:" and len(lines) == 2
    where = f"  {lb}:{row}: bad label row" if row else f"  {lb}: "
    assert lines[1].startswith(where) and word in lines[1]


# ---------------------------------------------------------------------------------------------
# Custom classes through metainfo with the shipped configs (docs/mm.md, "Your own classes")

def _shipped(name: str, opts: dict):
    """A shipped config with --cfg-options-style overrides, as tools/train.py merges them; no
    ImageNet weights (their URL cannot be fetched here, which the pre-flight would report)."""
    cfg = copy.deepcopy(_parsed(str(REPO / "configs" / name)))
    cfg.merge_from_dict({"model.backbone.init_cfg": None, **opts})
    return cfg


def test_metainfo_classes_coco_layout(tmp_path):
    """retinanet_lsnet_t_coco.py on coco_real with 3 of its categories: the dataset keeps
    those, in the metainfo's order, and CocoMetric names its per-class results after them."""
    classes = ("bus", "person", "car")
    ds = dict(data_root=f"{COCO}/", metainfo=dict(classes=classes))
    cfg = _shipped("retinanet_lsnet_t_coco.py", {
        "model.bbox_head.num_classes": 3, "test_dataloader.dataset": ds,
        "test_evaluator.ann_file": f"{COCO}/annotations/instances_val2017.json",
        "test_evaluator.classwise": True, "work_dir": str(tmp_path)})
    from lsdense.mm.checks import preflight

    preflight(cfg, "test")
    dataset = _build(cfg.test_dataloader.dataset)
    assert dataset.metainfo["classes"] == classes
    labels = {x["bbox_label"] for i in range(len(dataset)) for x in
              dataset.get_data_info(i)["instances"]}
    assert labels == {0, 1, 2}
    from mmdet.registry import METRICS

    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = dataset.metainfo  # what mmengine's ValLoop/TestLoop do
    assert _echo_coco_metric(dataset, metric) == 1.0
    assert sorted(k for k in metric._last if k.endswith("_precision")) == \
        ["coco/bus_precision", "coco/car_precision", "coco/person_precision"]


def _echo_coco_metric(ds, metric) -> float:
    import torch

    samples = []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        inst = [x for x in info["instances"] if not x["ignore_flag"]]
        samples.append(dict(img_id=info["img_id"], ori_shape=(info["height"], info["width"]),
                            pred_instances=dict(
                                bboxes=torch.tensor([x["bbox"] for x in inst]).reshape(-1, 4),
                                scores=torch.ones(len(inst)),
                                labels=torch.tensor([x["bbox_label"] for x in inst],
                                                    dtype=torch.long))))
    metric.process({}, samples)
    metric._last = metric.evaluate(len(samples))
    return metric._last["coco/bbox_mAP"]


def test_metainfo_classes_voc_layout(tmp_path):
    """retinanet_lsnet_t_voc0712.py on voc0712_real (VOC2007) with 2 classes: objects of other
    names are skipped, the labels follow the metainfo's order, VOCMetric scores 1.000."""
    classes = ("person", "dog")
    cfg = _shipped("retinanet_lsnet_t_voc0712.py", {
        "model.bbox_head.num_classes": 2, "work_dir": str(tmp_path),
        "test_dataloader.dataset": dict(data_root=f"{VOC}/VOCdevkit/",
                                        ann_file="VOC2007/ImageSets/Main/trainval.txt",
                                        metainfo=dict(classes=classes))})
    from lsdense.mm.checks import preflight

    preflight(cfg, "test")
    dataset = _build(cfg.test_dataloader.dataset)
    assert dataset.metainfo["classes"] == classes
    assert [x["bbox_label"] for x in dataset.get_data_info(0)["instances"]] == [1, 0]  # dog, person
    assert _echo_voc(cfg) == 1.0


@pytest.mark.parametrize("reduce_zero_label", [True, False])
def test_metainfo_classes_semantic_fpn_ade_layout(tmp_path, reduce_zero_label):
    """fpn_lsnet_t_ade20k.py on the ADE layout of seg_voc_ade with another class list: the VOC
    masks (0 background, 1..20, 255 outline) through BaseSegDataset. reduce_zero_label=True: 0
    is ignored and VOC id k is class k-1 (20 names); False: 0 is class 'background' (21)."""
    import numpy as np
    from mmseg.registry import DATASETS, METRICS
    from mmseg.utils import register_all_modules

    seg = Path(realdata_root("seg_voc_ade"))
    names = [n.strip() for n in (seg / "class_names.txt").read_text().splitlines() if n.strip()]
    classes = tuple(names[1:]) if reduce_zero_label else ("background", *names[1:])
    cfg = _shipped("fpn_lsnet_t_ade20k.py", {
        "model.decode_head.num_classes": len(classes), "work_dir": str(tmp_path),
        "test_dataloader.dataset": dict(
            type="BaseSegDataset", data_root=str(seg), img_suffix=".jpg", seg_map_suffix=".png",
            reduce_zero_label=reduce_zero_label, metainfo=dict(classes=classes),
            data_prefix=dict(img_path="ADEChallengeData2016/images/training",
                             seg_map_path="orig_voc_SegmentationClass/training"),
            pipeline=[dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"),
                      dict(type="PackSegInputs")])})
    from lsdense.mm.checks import preflight

    preflight(cfg, "test")
    register_all_modules(init_default_scope=True)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    assert dataset.metainfo["classes"] == classes and len(dataset) == 3
    item = dataset[0]  # 2007_000063: dog (VOC 12) and chair (VOC 9)
    gt = item["data_samples"].gt_sem_seg.data.numpy()
    present = sorted(dataset.metainfo["classes"][v] for v in np.unique(gt) if v != 255)
    assert present == (["chair", "dog"] if reduce_zero_label else ["background", "chair", "dog"])
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = dataset.metainfo
    samples = []
    for i in range(len(dataset)):
        ds = dataset[i]["data_samples"]
        samples.append(dict(pred_sem_seg=dict(data=ds.gt_sem_seg.data),
                            gt_sem_seg=dict(data=ds.gt_sem_seg.data)))
    metric.process({}, samples)
    assert metric.evaluate(len(samples))["mIoU"] == 100.0


@pytest.mark.parametrize("case", ["ade_classes_not_ade", "reduce_zero_label_differs"])
def test_semantic_fpn_class_settings_stop_with_one_line(tmp_path, case):
    seg = Path(realdata_root("seg_voc_ade")) / "ADEChallengeData2016"
    ds = dict(data_root=str(seg), data_prefix=dict(img_path="images/validation",
                                                   seg_map_path="annotations/validation"))
    if case == "ade_classes_not_ade":
        ds["metainfo"] = dict(classes=("person", "scratch", "dent"))
        want = ("test_dataloader.dataset.metainfo.classes: ['scratch', 'dent'] are not "
                "ADE20KDataset classes")
    else:
        ds["reduce_zero_label"] = False  # the shipped pipeline's LoadAnnotations says True
        want = ("test_dataloader.dataset.pipeline[2] (LoadAnnotations) has reduce_zero_label="
                "True but the dataset reads reduce_zero_label=False")  # mmseg's ade20k.py
    n = 3 if case == "ade_classes_not_ade" else 150
    cfg = _shipped("fpn_lsnet_t_ade20k.py", {"model.decode_head.num_classes": n,
                                             "test_dataloader.dataset": ds})
    from lsdense.mm.checks import preflight

    with pytest.raises(PreflightError) as err:
        preflight(cfg, "test")
    lines = str(err.value).splitlines()
    assert len(lines) == 1 and lines[0].startswith(want), lines


def test_tools_train_reports_the_export_problems_not_a_traceback(tmp_path):
    """As a user runs it: tools/train.py on a COCO export with two problems stops before any
    model is built with exit status 1 and one line per problem."""
    import subprocess
    import sys

    def edit(d, p):
        _poly(d)[1]["bbox"][2] = -5.0
        COCO_STOP["annotation_of_missing_image"][0](d, p)

    _, ann = _coco_case(tmp_path, edit)
    x, y, _, h = _poly(json.loads(ann.read_text()))[1]["bbox"]
    root = ann.parents[1]
    opts = [f"{k}.dataset.{x}" for k in ("train_dataloader", "val_dataloader")
            for x in (f"data_root={root}/", "ann_file=annotations/instances_val2017.json",
                      "data_prefix.img=val2017/")] + [f"val_evaluator.ann_file={ann}"]
    run = subprocess.run([sys.executable, str(REPO / "tools" / "train.py"),
                          str(REPO / "configs" / "real" / "retinanet_lsnet_t_cocoreal.py"),
                          "--work-dir", str(tmp_path / "w"), "--cfg-options", *opts],
                         capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 1, run.stderr[-2000:]
    err = run.stderr.strip().splitlines()
    assert "Traceback" not in run.stderr
    assert err[-2:] == [f"error: {ann}: annotations[].image_id: 1 x annotations of image ids not in "
                        f"images (id 150977 -> image 999); add those images or delete the "
                        f"annotations",
                        f"error: {ann}: annotations[].bbox: 1 x boxes of negative width/height (id "
                        f"1492051: [{x}, {y}, -5.0, {h}]); COCO bbox is [x, y, width, height], not "
                        f"[x1, y1, x2, y2]: re-export or correct them"]


def _recolour(masks):
    from PIL import Image

    for m in sorted(masks.glob("*.png"))[:1]:
        Image.open(m).convert("RGB").save(m)


def _shrink(masks):
    from PIL import Image

    for m in sorted(masks.glob("*.png"))[:1]:
        im = Image.open(m)
        im.resize((im.width // 2, im.height // 2), Image.NEAREST).save(m)


@pytest.mark.parametrize("case,edit,want", [
    ("colour_masks", _recolour, "Seg map in colour: {m} (RGB) (train_dataloader.dataset): mmseg "
                                "reads one class id per pixel. Convert the colours"),
    ("mask_missing", lambda m: os.remove(m / "2007_000063.png"),
     "Seg map missing: {m} (train_dataloader.dataset: every image of"),
    ("mask_size_differs", _shrink, "Seg map of another size than its image: {m} (250x187, its "
                                   "image 500x375) (train_dataloader.dataset). Re-export"),
])
def test_semantic_masks_from_tools_stop_with_one_line(tmp_path, case, edit, want):
    """Masks as CVAT's 'Segmentation mask 1.1' (RGB) or a resizing export leave them."""
    root = tmp_path / "ADEChallengeData2016"
    shutil.copytree(Path(realdata_root("seg_voc_ade")) / "ADEChallengeData2016", root)
    masks = root / "annotations" / "training"
    edit(masks)
    cfg = _shipped("fpn_lsnet_t_ade20k.py", {"train_dataloader.dataset.data_root": str(root),
                                             "val_dataloader.dataset.data_root": str(root)})
    from lsdense.mm.checks import preflight

    with pytest.raises(PreflightError) as err:
        preflight(cfg, "train")
    lines = str(err.value).splitlines()
    assert len(lines) == 1 and lines[0].startswith(want.format(m=masks / "2007_000063.png")), lines


def test_unreadable_image_after_ultralytics_import_is_reported_not_raised(tmp_path):
    """Ultralytics patches ``PIL.Image.open`` (pi-heif retry) so that a non-image raises
    ModuleNotFoundError once it is imported in the process: the mm checks still read it as
    unreadable (the run then names the file, test_mm_train.py)."""
    pytest.importorskip("ultralytics")
    import ultralytics.utils.patches  # noqa: F401  (applies the patch)
    from lsdense.mm.checks import image_size

    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    assert image_size(str(bad)) is None
    good = tmp_path / "y.png"
    from PIL import Image

    Image.new("L", (7, 5)).save(good)
    assert image_size(str(good)) == (7, 5)


def test_semantic_fpn_settings_checked_for_datasets_with_an_ann_file(tmp_path):
    """mmseg's PascalVOCDataset reads an ann_file (a split list): its class list and
    reduce_zero_label are checked as for folder-listed datasets, whatever else is missing."""
    ds = dict(type="PascalVOCDataset", data_root=str(tmp_path / "VOC2012"),
              ann_file="ImageSets/Segmentation/val.txt", metainfo=dict(classes=("cat", "scratch")),
              data_prefix=dict(img_path="JPEGImages", seg_map_path="SegmentationClass"),
              pipeline=[dict(type="LoadImageFromFile"),
                        dict(type="LoadAnnotations", reduce_zero_label=True),
                        dict(type="PackSegInputs")])
    cfg = _shipped("fpn_lsnet_t_ade20k.py", {"model.decode_head.num_classes": 2,
                                             "test_dataloader.dataset": ds})
    from lsdense.mm.checks import preflight

    with pytest.raises(PreflightError) as err:
        preflight(cfg, "test")
    lines = str(err.value).splitlines()
    key = "test_dataloader.dataset"
    assert any(ln.startswith(f"{key}.metainfo.classes: ['scratch'] are not PascalVOCDataset "
                             f"classes") for ln in lines), lines
    assert any(ln.startswith(f"{key}.pipeline[1] (LoadAnnotations) has reduce_zero_label=True "
                             f"but the dataset reads reduce_zero_label=False") for ln in lines), lines
