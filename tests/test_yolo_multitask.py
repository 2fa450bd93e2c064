"""A-YOLOM multi-task: losses and metrics vs hand-computed values, BDD100K reader, training, resume."""
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ultralytics")

import cv2  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from lsdense.yolo import AYOLOM  # noqa: E402
from lsdense.yolo.multitask import (MultiTaskModel, ayolom_fitness, balanced_accuracy,  # noqa: E402
                                    confusion, fg_iou, focal_loss, miou, tversky_loss)
from lsdense.yolo.multitask.loss import seg_loss, split_semantic  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CFG = ROOT / "configs" / "yolo"
TRAIN = dict(epochs=1, imgsz=64, batch=4, workers=0, plots=False, device="cpu", amp=False,
             exist_ok=True, verbose=False)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from lsdense.toydata.bdd import make_bdd100k

    return make_bdd100k(tmp_path_factory.mktemp("bdd"), num_train=8, num_val=4, seed=1, size=(64, 96))


def _logits(p_fg):
    """2-channel logits whose softmax foreground probability is p_fg."""
    p = torch.tensor(p_fg, dtype=torch.float64)
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))])[None]


def test_lsdense_option_tversky_and_focal_against_hand_computed_values():
    p = [[0.9, 0.2], [0.6, 0.3]]
    t = torch.tensor([[[1, 0], [1, 255]]])  # the 255 pixel is ignored
    logits = _logits(p)
    # TP = 0.9 + 0.6, FN = 0.1 + 0.4, FP = 0.2 (alpha 0.7 on FN, 0.3 on FP, smooth 1)
    tp, fn, fp = 1.5, 0.5, 0.2
    assert tversky_loss(logits, t).item() == pytest.approx(1 - (tp + 1) / (tp + 0.7 * fn + 0.3 * fp + 1))
    # focal: fg pixels a=0.25, p_t = p; bg pixel a=0.75, p_t = 1 - p
    terms = [0.25 * (1 - 0.9) ** 2 * -math.log(0.9), 0.75 * 0.2 ** 2 * -math.log(0.8),
             0.25 * 0.4 ** 2 * -math.log(0.6)]
    assert focal_loss(logits, t).item() == pytest.approx(sum(terms) / 3)
    assert seg_loss(logits, t, "lsdense").item() == pytest.approx(
        8 * tversky_loss(logits, t).item() + 24 * focal_loss(logits, t).item())


def test_dataset_wide_metrics_against_hand_computed_confusion():
    pred = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 1]])
    true = torch.tensor([[1, 0, 0, 255], [1, 1, 0, 0]])
    cm = confusion(pred, true)
    assert cm.tolist() == [[2, 2], [1, 2]]  # [[TN, FP], [FN, TP]], 7 valid pixels
    assert fg_iou(cm) == pytest.approx(2 / (2 + 2 + 1))
    assert miou(cm) == pytest.approx((2 / (2 + 2 + 1) + 2 / (2 + 2 + 1)) / 2)
    assert balanced_accuracy(cm) == pytest.approx((2 / 3 + 2 / 4) / 2)  # (TP/(TP+FN) + TN/(TN+FP)) / 2


def test_packed_mask_decoding():
    m = torch.tensor([[0, 1, 2, 3, 255]])
    da, ll = split_semantic(m)
    assert da.tolist() == [[0, 1, 0, 1, 255]] and ll.tolist() == [[0, 0, 1, 1, 255]]


@pytest.mark.parametrize("name", sorted(p.stem for p in CFG.glob("ayolom-*.yaml")))
def test_shipped_ayolom_yaml_forward_backward(name):
    model = MultiTaskModel(str(CFG / f"{name}.yaml"), verbose=False)
    assert model.seg_tasks == ("drivable", "lane")
    det, seg = model(torch.rand(2, 3, 64, 64))
    assert [s.shape for s in seg] == [torch.Size([2, 2, 64, 64])] * 2
    (det["boxes"].mean() + det["scores"].mean() + sum(s.mean() for s in seg)).backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    # the official hard gate (sigmoid(w) > 0.5) gives its scalar no gradient, as in A-YOLOM
    gates = [f"model.{i}.weight" for i, m in enumerate(model.model) if type(m).__name__ == "AdaptiveConcat"]
    assert sorted(no_grad) == sorted(gates), no_grad[:5]
    assert ("lsdense" in name) == (not gates)


def test_reader_checks_masks_and_merges_classes(toy, tmp_path):
    from lsdense.yolo.multitask.data import MultiTaskDataset
    from ultralytics.cfg import get_cfg

    root = Path(toy["root"])
    # A-YOLOM's release directories with PNG masks, its 10-class ids, merged to one class by class_map
    for split, ay in (("train", "train2017"), ("val", "val2017")):
        shutil.copytree(root / f"images/100k/{split}", tmp_path / f"images/{ay}")
        for src, dst in (("drivable/masks", "seg-drivable-10/labels"), ("lane/masks", "seg-lane-11/labels")):
            (tmp_path / dst / ay).mkdir(parents=True)
            for f in (root / src / split).glob("*.png"):
                m = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
                fg = m < 2 if "drivable" in src else m != 255
                cv2.imwrite(str(tmp_path / dst / ay / f.name), fg.astype(np.uint8) * 255)
        (tmp_path / "detection-object/labels" / ay).mkdir(parents=True)
        for f in (root / f"labels/100k/{split}").glob("*.txt"):
            rows = [f"{7 if i % 2 else 2} {' '.join(r.split()[1:])}"
                    for i, r in enumerate(f.read_text().splitlines())]
            (tmp_path / "detection-object/labels" / ay / f.name).write_text("\n".join(rows) + "\n")
    data = {"path": str(tmp_path), "train": "images/train2017", "val": "images/val2017",
            "names": {0: "vehicle"}, "layout": "ayolom", "mask_format": "png", "class_map": {2: 0},
            "channels": 3}
    cfg = get_cfg(overrides={"imgsz": 64})
    ds = MultiTaskDataset(img_path=str(tmp_path / "images/val2017"), imgsz=64, augment=False,
                          hyp=cfg, data=data, batch_size=2)
    official = MultiTaskDataset(img_path=str(root / "images/100k/val"), imgsz=64, augment=False,
                                hyp=cfg, data=yaml.safe_load(Path(toy["multitask_yaml"]).read_text())
                                | {"channels": 3}, batch_size=2)
    for i in range(len(ds)):  # same scene, both layouts: identical packed masks
        assert np.array_equal(ds.load_packed_mask(i), official.load_packed_mask(i))
        n_src = len(official.labels[i]["cls"])
        assert len(ds.labels[i]["cls"]) == (n_src + 1) // 2  # rows with source id 7 dropped
    item = official[0]
    assert item["semantic_mask"].shape == item["img"].shape[1:]
    assert set(item["semantic_mask"].unique().tolist()) <= {0, 1, 2, 3, 255}
    # a mask whose size differs from its image
    bad = tmp_path / "seg-lane-11/labels/val2017" / sorted(p.name for p in
                                                           (tmp_path / "seg-lane-11/labels/val2017").iterdir())[0]
    cv2.imwrite(str(bad), np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match=r"is 10x10 but its image .* is 96x64"):
        MultiTaskDataset(img_path=str(tmp_path / "images/val2017"), imgsz=64, augment=False, hyp=cfg,
                         data=data, batch_size=2)


def test_reader_label_scan_is_cached_and_rescanned_on_change(toy, tmp_path, monkeypatch):
    from lsdense.yolo.multitask import data as mt_data
    from ultralytics.cfg import get_cfg

    root = tmp_path / "bdd"
    shutil.copytree(toy["root"], root)
    data = yaml.safe_load(Path(toy["multitask_yaml"]).read_text()) | {"path": str(root), "channels": 3}
    cfg = get_cfg(overrides={"imgsz": 64})

    def build():
        return mt_data.MultiTaskDataset(img_path=str(root / "images/100k/val"), imgsz=64,
                                        augment=False, hyp=cfg, data=data, batch_size=2)

    first = build()
    cache = root / "labels/100k/val.multitask.cache"
    assert cache.is_file() and not (root / "labels/100k/val.cache").exists()

    def no_scan(args):
        raise AssertionError(f"rescanned {args[0]}")

    monkeypatch.setattr(mt_data, "verify_multitask_image", no_scan)
    second = build()  # read from the cache: no image or mask opened
    assert len(second.labels) == len(first.labels) == 4
    for a, b in zip(first.labels, second.labels):
        assert a["im_file"] == b["im_file"] and a["shape"] == b["shape"]
        assert np.array_equal(a["cls"], b["cls"]) and np.array_equal(a["bboxes"], b["bboxes"])
        assert a["mask_files"] == b["mask_files"]
    lane = sorted((root / "lane/masks/val").glob("*.png"))[0]
    cv2.imwrite(str(lane), np.zeros((10, 10), np.uint8))  # a changed mask: scanned again
    with pytest.raises(AssertionError, match="rescanned"):
        build()


def test_converter_class_selection(tmp_path):
    import json

    from lsdense.bdd100k import convert_det_json, parse_class_map

    js = tmp_path / "det.json"
    js.write_text(json.dumps([{"name": "a.jpg", "labels": [
        {"category": "car", "box2d": {"x1": 0, "y1": 0, "x2": 640, "y2": 360}},
        {"category": "person", "box2d": {"x1": 10, "y1": 10, "x2": 20, "y2": 30}},
        {"category": "traffic sign", "box2d": {"x1": 1, "y1": 1, "x2": 2, "y2": 2}}]}]))
    convert_det_json(js, tmp_path, tmp_path / "out", "vehicle=car,bus;person=pedestrian")
    rows = (tmp_path / "out/a.txt").read_text().split("\n")
    assert rows[0] == "0 0.250000 0.250000 0.500000 0.500000"  # 1280x720 default frame size
    assert rows[1].startswith("1 ") and rows[2] == ""
    with pytest.raises(ValueError, match="Unknown BDD100K categories"):
        parse_class_map("vehicle=car,spaceship")


def test_training_defaults_of_the_published_run(toy, tmp_path):
    from lsdense.yolo.multitask import MultiTaskTrainer

    t = MultiTaskTrainer(overrides={"model": str(CFG / "ayolom-n.yaml"), "data": str(toy["multitask_yaml"]),
                                    "epochs": 2, "project": str(tmp_path), "name": "d", "device": "cpu"})
    a = t.args
    assert (a.optimizer, a.momentum, a.warmup_bias_lr, a.close_mosaic, a.patience, a.imgsz, a.batch, a.lr0) == \
        ("SGD", 0.937, 0.1, 0, 50, 640, 12, 0.01)
    assert a.epochs == 2  # what the user sets wins


def test_ayolom_trains_validates_predicts_and_resumes(toy, tmp_path):
    from lsdense.yolo.speed import measure_fps

    model = AYOLOM(str(CFG / "ayolom-n-lolvit_s.yaml"))

    def stop(trainer):  # interrupt after the first epoch's checkpoint is written
        if trainer.epoch == 0:
            raise KeyboardInterrupt

    model.add_callback("on_model_save", stop)
    with pytest.raises(KeyboardInterrupt):
        model.train(data=str(toy["multitask_yaml"]), project=str(tmp_path), name="mt",
                    **{**TRAIN, "epochs": 2})
    last = tmp_path / "mt/weights/last.pt"
    resumed = AYOLOM(str(last))
    resumed.train(resume=True)
    assert resumed.trainer.start_epoch == 1 and resumed.trainer.epoch == 1
    metrics = resumed.trainer.metrics
    for k in ("metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)",
              "metrics/drivable_mIoU", "metrics/lane_acc", "metrics/lane_IoU"):
        assert 0.0 <= metrics[k] <= 1.0, k
    official = {k: metrics[k] for k in metrics if k.endswith("A-YOLOM)")}
    assert len(official) == 10 and all(0.0 <= v <= 1.0 for v in official.values())
    assert resumed.trainer.fitness == pytest.approx(ayolom_fitness(  # best.pt fitness as official
        metrics["metrics/mAP50(B,A-YOLOM)"], metrics["metrics/mAP50-95(B,A-YOLOM)"],
        {t: (metrics[f"metrics/{t}_IoU(A-YOLOM)"], metrics[f"metrics/{t}_mIoU(A-YOLOM)"])
         for t in ("drivable", "lane")}), abs=1e-4)  # trainer.metrics are rounded to 5 decimals
    val = AYOLOM(str(last)).val(data=str(toy["multitask_yaml"]), imgsz=64, batch=4, workers=0,
                                plots=False, verbose=False)
    assert 0.0 <= val.box.map50 <= 1.0
    img = next((Path(toy["root"]) / "images/100k/val").glob("*.jpg"))
    r = AYOLOM(str(last)).predict(str(img), imgsz=64, verbose=False)[0]
    assert set(r.seg_masks) == {"drivable", "lane"}
    assert tuple(r.seg_masks["lane"].shape) == r.orig_shape == (64, 96)
    for bs in (1, 32):
        assert measure_fps(resumed.model, imgsz=64, batch=bs, warmup=1, iters=1) > 0
