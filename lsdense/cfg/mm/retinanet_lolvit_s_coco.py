# RetinaNet with LOLViT-S on COCO 2017.
# No paper number for this head: LOLViT (Li et al., arXiv 2508.01385) reports COCO only with a
# YOLO head (LOLViT-S: 37.8 mAP50-95 at 640, Tab. 5; see configs/yolo/). This config gives the
# mmdet comparison under LSNet's lightweight-backbone detection recipe: AdamW lr 1e-4,
# betas (0.9, 0.999), wd 0.05 (none on DReLu's DP scalars), 500-iter linear warm-up
# (ratio 0.001), 12 epochs with steps at 8 and 11, 2 images/GPU x 8 GPUs, scale (1333, 800),
# backbone BatchNorm frozen (norm_eval), seed 0.
# Levels 2-4 (strides 8-32) feed the FPN; extra convs on the input give strides 8-128.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    './_base_/schedules/adamw_1x.py',
    'mmdet::_base_/default_runtime.py',
    'mmdet::retinanet/retinanet_tta.py'
]
custom_imports = dict(imports=['lsdense.mmdet'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='LOLViTBackbone',
        arch='s',
        out_indices=(2, 3, 4),
        frozen_stages=-1,
        norm_eval=True,
        init_cfg=None),  # no ImageNet weights are published; see docs/mm.md
    neck=dict(in_channels=[64, 96, 128], start_level=0, num_outs=5))

train_dataloader = dict(batch_size=2)  # x 8 GPUs
randomness = dict(seed=0)  # as the official LSNet detection runs
