# RetinaNet with HyLiSANet-S on COCO 2017. No paper number: LiSA reports Mask R-CNN only (Tab. 9:
# box AP 47.7); this config uses that recipe with mmdet's RetinaNet.
# Recipe (paper: "1x schedule, the same recipe as Swin"): AdamW lr 1e-4, betas (0.9, 0.999),
# wd 0.05 (none on the LiSA kernels r1/r2 and norms), 1000-iter linear warm-up (ratio 0.001),
# 12 epochs with steps at 8 and 11, 2 images/GPU x 8 GPUs, scale (1333, 800), drop path 0.1.
# No ImageNet weights are published: give yours with init_cfg=dict(type='Pretrained', ...).
# Levels 1-3 (strides 8-32) feed the FPN (start_level=1, as for ResNet); strides 8-128.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['lsdense.mmdet'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='LiSANetBackbone',
        arch='s',
        hybrid=True,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_eval=True,
        drop_path_rate=0.1,
        init_cfg=None),  # no ImageNet weights are published; see docs/mm.md
    neck=dict(in_channels=[64, 128, 320, 384]))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys={'attn.r1': dict(decay_mult=0.0), 'attn.r2': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
train_cfg = dict(max_epochs=12)
train_dataloader = dict(batch_size=2)  # x 8 GPUs
auto_scale_lr = dict(enable=False, base_batch_size=16)
