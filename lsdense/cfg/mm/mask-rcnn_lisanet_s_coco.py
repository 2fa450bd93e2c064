# Mask R-CNN with LiSANet-S on COCO 2017 (Kwon et al., LiSA, Tab. 9): target box AP 47.2 / mask AP 42.2.
# Recipe (paper: "1x schedule, the same recipe as Swin"): AdamW lr 1e-4, betas (0.9, 0.999),
# wd 0.05 (none on the LiSA kernels r1/r2 and norms), 1000-iter linear warm-up (ratio 0.001),
# 12 epochs with steps at 8 and 11, 2 images/GPU x 8 GPUs, scale (1333, 800), drop path 0.1.
# No ImageNet weights are published: give yours with init_cfg=dict(type='Pretrained', ...).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    './_base_/schedules/adamw_swin_1x.py',
    'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['lsdense.mmdet'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='LiSANetBackbone',
        arch='s',
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_eval=True,
        drop_path_rate=0.1,
        init_cfg=None),  # no ImageNet weights are published; see docs/mm.md
    neck=dict(in_channels=[64, 128, 320, 384]))

train_dataloader = dict(batch_size=2)  # x 8 GPUs
