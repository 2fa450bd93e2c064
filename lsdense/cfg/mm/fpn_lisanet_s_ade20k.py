# Semantic FPN with LiSANet-S on ADE20K (Kwon et al., LiSA, Tab. 10): target mIoU 49.2.
# Recipe (paper: 80k iterations, drop path 0.15, "the same setting as PVT"): AdamW lr 1e-4,
# betas (0.9, 0.999), wd 1e-4 (none on the LiSA kernels r1/r2 and norms), poly schedule
# (power 0.9, min lr 1e-6), 4 images/GPU x 4 GPUs, crop 512 x 512, scale (2048, 512).
# No ImageNet weights are published: give yours with init_cfg=dict(type='Pretrained', ...).
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    './_base_/schedules/adamw_pvt_poly_80k.py'
]
custom_imports = dict(imports=['lsdense.mmseg'], allow_failed_imports=False)

crop_size = (512, 512)  # as mmseg's sem_fpn/fpn_r50_4xb4-*_ade20k-512x512.py
data_preprocessor = dict(size=crop_size)

model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=150),
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

train_dataloader = dict(batch_size=4)  # x 4 GPUs
