# RetinaNet with LOLViT-S on Pascal VOC 07+12 (test: VOC2007 test, VOC mAP@0.5, 11 points as mmdet).
# Paper reference: LOLViT-S reaches 74.5 mAP50 on VOC 07+12 with a YOLO head at 640 (Li et al.,
# Tab. 7; configs/yolo/lolvit_s-voc.yaml); no RetinaNet number exists. mmdet's VOC schedule
# (07+12 trainval repeated 3 times, 4 epochs, step at 3, scale (1000, 600)) with LSNet's detection
# optimiser: AdamW lr 1e-4, betas (0.9, 0.999), wd 0.05 (none on DReLu's DP scalars),
# 500-iter linear warm-up, 2 images/GPU x 8 GPUs, backbone BatchNorm frozen (norm_eval), seed 0.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/voc0712.py',
    './_base_/schedules/adamw_1x_voc0712.py',
    'mmdet::_base_/default_runtime.py',
    'mmdet::retinanet/retinanet_tta.py'  # tools/test.py --tta
]
custom_imports = dict(imports=['lsdense.mmdet'], allow_failed_imports=False)
# per-class tables name metainfo's classes, not VOC's 20 (mmdet's VOCMetric; lsdense/mm/hooks.py)
custom_hooks = [dict(type='VOCClassNamesHook')]

model = dict(
    backbone=dict(
        _delete_=True,
        type='LOLViTBackbone',
        arch='s',
        out_indices=(2, 3, 4),
        frozen_stages=-1,
        norm_eval=True,
        init_cfg=None),  # no ImageNet weights are published; see docs/mm.md
    bbox_head=dict(num_classes=20),
    neck=dict(in_channels=[64, 96, 128], start_level=0, num_outs=5))

train_dataloader = dict(batch_size=2)  # x 8 GPUs
randomness = dict(seed=0)  # as the official LSNet detection runs
