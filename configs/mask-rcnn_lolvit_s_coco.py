# Mask R-CNN with LOLViT-S on COCO 2017.
# No paper number for this head: LOLViT (Li et al., arXiv 2508.01385) reports COCO only with a
# YOLO head (LOLViT-S: 37.8 mAP50-95 at 640, Tab. 5; see configs/yolo/). This config gives the
# mmdet comparison under LSNet's lightweight-backbone detection recipe: AdamW lr 1e-4,
# betas (0.9, 0.999), wd 0.05 (none on DReLu's DP scalars), 500-iter linear warm-up
# (ratio 0.001), 12 epochs with steps at 8 and 11, 2 images/GPU x 8 GPUs, scale (1333, 800),
# backbone BatchNorm frozen (norm_eval), seed 0.
# Levels 1-4 (strides 4-32) feed mmdet's FPN; max pooling adds stride 64.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['lsdense.mmdet'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='LOLViTBackbone',
        arch='s',
        out_indices=(1, 2, 3, 4),
        frozen_stages=-1,
        norm_eval=True,
        init_cfg=None),  # no ImageNet weights are published; see docs/mm.md
    neck=dict(in_channels=[48, 64, 96, 128]))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    # as the official LSNet recipe: only the learnable scalars (here DReLu's DP, there
    # attention_biases) are exempt; norm layers are decayed
    paramwise_cfg=dict(custom_keys={'drelu.dp': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
train_cfg = dict(max_epochs=12)
train_dataloader = dict(batch_size=2)  # x 8 GPUs
auto_scale_lr = dict(enable=False, base_batch_size=16)
randomness = dict(seed=0)  # as the official LSNet detection runs
