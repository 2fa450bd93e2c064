"""A-YOLOM as published: structure and parameter counts of the official model, the official loss and
metrics against hand-computed values (facts: ../shared/specs/official.md)."""
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ultralytics")

import torch  # noqa: E402

import lsdense.yolo  # noqa: E402,F401
from lsdense.yolo.modules import AdaptiveConcat, SegHead  # noqa: E402
from lsdense.yolo.multitask import (AYOLOMSegMetrics, MultiTaskModel, SegMetrics,  # noqa: E402
                                    ayolom_ap_per_class, ayolom_compute_ap, ayolom_fitness, ayolom_focal_loss, ayolom_image_metrics,
                                    ayolom_tversky_loss, max_recall_pr, seg_loss)
from lsdense.yolo.multitask.loss import MultiTaskLoss  # noqa: E402
from lsdense.yolo.multitask.yamlgen import shipped_ayolom_yamls, write_ayolom_yaml  # noqa: E402

CFG = Path(__file__).resolve().parents[1] / "configs" / "yolo"
# official.md: n 3,640,051 and s 13,605,891; the official Segment head also holds an unused,
# frozen DFL (16 parameters per head), which lsdense leaves out: 32 fewer.
OFFICIAL_PARAMS = {"n": 3_640_051, "s": 13_605_891}
UNUSED_DFL = 2 * 16


def test_shipped_ayolom_yamls_are_the_generated_ones(tmp_path):
    shipped = sorted(p.name for p in CFG.glob("ayolom-*.yaml"))
    assert shipped == sorted(shipped_ayolom_yamls())
    for name, kw in shipped_ayolom_yamls().items():
        write_ayolom_yaml(str(tmp_path / name), **kw)
        assert (tmp_path / name).read_text() == (CFG / name).read_text(), name


@pytest.mark.parametrize("scale", ["n", "s"])
def test_official_structure_and_parameter_count(scale):
    m = MultiTaskModel(str(CFG / f"ayolom-{scale}.yaml"), verbose=False)
    assert sum(p.numel() for p in m.parameters()) == OFFICIAL_PARAMS[scale] - UNUSED_DFL
    types = [type(x).__name__ for x in m.model]
    assert len(types) == 49 and types[46:] == ["Detect", "SegHead", "SegHead"]
    # lane branch rows 22-33 first, drivable 34-45; adaptive concatenations at the same rows as official
    cats = [i for i, t in enumerate(types) if t == "AdaptiveConcat"]
    assert cats == [23, 26, 29, 32, 35, 38, 41, 44]
    assert [m.model[47].f, m.model[48].f] == [45, 33] and m.seg_tasks == ("drivable", "lane")
    assert m.detect_head() is m.model[46] and m.stride.tolist() == [8, 16, 32]
    widths = m._output_widths(3)  # output channels of every row
    for i, skip in zip(cats, [6, 4, 2, 0] * 2):
        g = m.model[i]
        assert isinstance(g, AdaptiveConcat) and g.f == [-1, skip] and g.weight.item() == 5.0
        assert g.conv.kernel_size == (1, 1) and g.conv.bias is not None
        assert (g.conv.in_channels, g.conv.out_channels) == (widths[i - 1] + widths[skip], widths[i - 1])
    head = m.model[47]
    assert isinstance(head, SegHead)
    assert [type(x).__name__ for x in (head.cv1, head.upsample, head.cv2, head.cv3)] == \
        ["Conv", "ConvTranspose2d", "Conv", "Conv"]
    assert head.upsample.bias is not None and head.cv3.conv.out_channels == 2
    assert type(head.cv3.bn).__name__ == "BatchNorm2d" and type(head.cv3.act).__name__ == "SiLU"


def test_adaptive_concat_gate_semantics():
    g = AdaptiveConcat([4, 2], 4)
    a, b = torch.rand(1, 4, 3, 3), torch.rand(1, 2, 3, 3)
    ref = torch.nn.functional.conv2d(torch.cat([a, b], 1), g.conv.weight, g.conv.bias)
    assert torch.allclose(g([a, b]), ref)  # gate 5.0: sigmoid > 0.5, projected concat
    with torch.no_grad():
        g.weight.fill_(-0.1)  # sigmoid < 0.5: the upsampled input alone
    assert torch.equal(g([a, b]), a)
    with pytest.raises(ValueError, match="AYOLOM"):
        AdaptiveConcat()


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_official_loss_against_hand_computed_values():
    # one image, two pixels; pixel 0 foreground, pixel 1 letterbox padding (255) = background
    scores = torch.tensor([[[[0.0, 1.0]], [[2.0, -1.0]]]], dtype=torch.float64)  # (1, 2, 1, 2)
    target = torch.tensor([[[1, 255]]])
    p = {(0, 0): _sig(0.0), (0, 1): _sig(1.0), (1, 0): _sig(2.0), (1, 1): _sig(-1.0)}  # (channel, pixel)
    y = {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 0}  # channel 0 = 1 - mask, channel 1 = mask
    tp = sum(y[k] * p[k] for k in p)
    fn = sum(y[k] * (1 - p[k]) for k in p)
    fp = sum((1 - y[k]) * p[k] for k in p)
    tversky = 1 - (tp + 1) / (tp + 0.7 * fn + 0.3 * fp + 1)
    focal = sum(-(y[k] * 0.25 * math.log(p[k]) + (1 - y[k]) * 0.75 * math.log(1 - p[k]))
                * abs(y[k] - p[k]) ** 2 for k in p) / 4
    assert ayolom_tversky_loss(scores, target).item() == pytest.approx(tversky, rel=1e-6)
    assert ayolom_focal_loss(scores, target).item() == pytest.approx(focal, rel=1e-6)
    assert seg_loss(scores, target).item() == pytest.approx(8 * tversky + 24 * focal, rel=1e-6)
    # the same pixels with padding ignored (lsdense option) give a different value
    assert seg_loss(scores, target, "lsdense").item() != pytest.approx(8 * tversky + 24 * focal, rel=1e-3)
    with pytest.raises(ValueError, match="official"):
        seg_loss(scores, target, "softmax")


def test_multitask_loss_head_terms_times_batch_size():
    model = MultiTaskModel(str(CFG / "ayolom-n.yaml"), verbose=False)
    from ultralytics.cfg import get_cfg

    model.args = get_cfg()
    crit = MultiTaskLoss(model)
    assert crit.convention == "official"
    x = torch.rand(2, 3, 64, 64)
    mask = torch.randint(0, 4, (2, 64, 64))
    mask[:, :, :8] = 255
    batch = {"img": x, "batch_idx": torch.zeros(0), "cls": torch.zeros(0, 1), "bboxes": torch.zeros(0, 4),
             "semantic_mask": mask}
    with torch.no_grad():
        preds = model(x)
        loss, items = crit(preds, batch)
    drivable = (mask & 1) * (mask != 255)
    lane = ((mask >> 1) & 1) * (mask != 255)
    assert loss[-2].item() == pytest.approx(2 * seg_loss(preds[1][0], drivable).item(), rel=1e-5)
    assert loss[-1].item() == pytest.approx(2 * seg_loss(preds[1][1], lane).item(), rel=1e-5)
    assert set(items) >= {"drivable_seg", "lane_seg"}


def _scores(pred):
    """(B, H, W) 0/1 predictions -> 2-channel scores whose argmax is ``pred``."""
    pred = torch.as_tensor(pred)
    return torch.stack([1 - pred, pred], 1).float()


def test_official_segmentation_metrics_per_image_with_empty_lane_and_padding():
    # image A: no lane in ground truth or prediction, right column is letterbox padding
    # image B: 1 TP, 1 FN, 2 FP (one of them on padding, which counts as background), 2 TN
    target = torch.tensor([[[0, 0, 255], [0, 0, 255]],
                           [[1, 1, 0], [0, 255, 255]]])
    pred = [[[0, 0, 0], [0, 0, 0]],
            [[1, 0, 0], [1, 1, 0]]]
    assert ayolom_image_metrics([[6, 0], [0, 0]]) == pytest.approx((0.0, 0.5, 0.5))
    assert ayolom_image_metrics([[2, 2], [1, 1]]) == \
        pytest.approx((1 / 4, (2 / 5 + 1 / 4) / 2, (1 / 2 + 2 / 4) / 2))
    m = AYOLOMSegMetrics(("lane",))
    m.update("lane", _scores(pred), target)
    r = m.results()
    assert r["metrics/lane_IoU(A-YOLOM)"] == pytest.approx((0 + 0.25) / 2)
    assert r["metrics/lane_mIoU(A-YOLOM)"] == pytest.approx((0.5 + 0.325) / 2)
    assert r["metrics/lane_acc(A-YOLOM)"] == pytest.approx((0.5 + 0.5) / 2)
    # the dataset-wide convention (padding ignored): TN 5, FP 1, FN 1, TP 1 over 8 valid pixels
    d = SegMetrics(("lane",))
    d.update("lane", _scores(pred), target)
    assert d.cm["lane"].tolist() == [[5, 1], [1, 1]]
    assert d.results()["metrics/lane_IoU"] == pytest.approx(1 / 3)


def test_detection_pr_at_max_recall_and_fitness():
    p_curve = np.array([[1.0, 0.8, 0.5, 0.4], [1.0, 0.9, 0.7, 0.3]])
    r_curve = np.array([[0.2, 0.7, 0.9, 0.9], [0.1, 0.5, 0.6, 0.6]])
    # mean recall per confidence: .15 .6 .75 .75 -> first maximum at index 2
    assert max_recall_pr(p_curve, r_curve) == pytest.approx((0.6, 0.75))
    assert max_recall_pr(np.zeros((0, 1000)), np.zeros((0, 1000))) == (0.0, 0.0)
    assert ayolom_fitness(0.78, 0.5, {"drivable": (0.8, 0.9), "lane": (0.28, 0.6)}) == \
        pytest.approx(0.078 + 0.45 + 1.7 + 0.88)


def test_official_ap_closes_the_curve_with_a_ramp():
    # one class, 4 ground-truth boxes, 2 detections, both true positives: recall .25, .5; precision 1, 1.
    # Official (Ultralytics 8.0.105): precision 1 up to recall .5, then a ramp to (1, 0): AP = .5 + .25
    assert ayolom_compute_ap(np.array([0.25, 0.5]), np.array([1.0, 1.0])) == pytest.approx(0.75)
    tp = np.ones((2, 10), bool)
    ap = ayolom_ap_per_class(tp, np.array([0.8, 0.9]), np.zeros(2), np.zeros(4))
    assert ap.shape == (1, 10) and ap == pytest.approx(np.full((1, 10), 0.75))
    # a second class with ground truth but no detections counts 0 in the mean
    ap = ayolom_ap_per_class(tp, np.array([0.8, 0.9]), np.zeros(2), np.array([0, 0, 0, 0, 1]))
    assert ap[:, 0].mean() == pytest.approx(0.375)
    # Ultralytics 8.4 drops precision to 0 after the last recall instead (about .5 here)
    from ultralytics.utils.metrics import compute_ap

    assert compute_ap([0.25, 0.5], [1.0, 1.0])[0] == pytest.approx(0.495, abs=1e-3)
