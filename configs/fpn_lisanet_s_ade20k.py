# Semantic FPN with LiSANet-S on ADE20K (Kwon et al., LiSA, Tab. 10): target mIoU 49.2.
# Recipe (paper: 80k iterations, drop path 0.15, "the same setting as PVT"): AdamW lr 1e-4,
# betas (0.9, 0.999), wd 1e-4 (none on the LiSA kernels r1/r2 and norms), poly schedule
# (power 0.9, min lr 1e-6), 4 images/GPU x 4 GPUs, crop 512 x 512, scale (2048, 512).
# No ImageNet weights are published: give yours with init_cfg=dict(type='Pretrained', ...).
_base_ = ['mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py']
custom_imports = dict(imports=['lsdense.mmseg'], allow_failed_imports=False)

model = dict(
    pretrained=None,  # the base's ResNet URL; weights come from backbone.init_cfg
    backbone=dict(
        _delete_=True,
        type='LiSANetBackbone',
        arch='s',
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_eval=False,
        drop_path_rate=0.15,
        init_cfg=None),  # no ImageNet weights are published; see docs/mm.md
    neck=dict(in_channels=[64, 128, 320, 384]))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys={'attn.r1': dict(decay_mult=0.0), 'attn.r2': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=1e-6, begin=0, end=80000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=80000, val_interval=8000)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=8000))
train_dataloader = dict(batch_size=4)  # x 4 GPUs
auto_scale_lr = dict(enable=False, base_batch_size=16)
