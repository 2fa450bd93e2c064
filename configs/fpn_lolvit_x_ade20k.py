# Semantic FPN with LOLViT-X on ADE20K. No paper number: LOLViT (Li et al., arXiv 2508.01385)
# reports segmentation only on BDD100K with A-YOLOM heads (configs/yolo/). This config uses the
# official LSNet Semantic FPN recipe (as fpn_lsnet_t_ade20k.py): AdamW lr 2e-4, betas (0.9, 0.999),
# wd 1e-4 on every parameter, poly schedule (power 0.9, min lr 1e-6) over 40k iterations,
# 4 images/GPU x 8 GPUs, crop 512 x 512, scale (2048, 512), backbone BatchNorm in eval mode (meant
# for an ImageNet-initialised backbone: from scratch, set norm_eval=False), AlignResize at test,
# seed 0 with deterministic cuDNN. Levels 1-4 (strides 4-32).
_base_ = ['mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py']
custom_imports = dict(imports=['lsdense.mmseg'], allow_failed_imports=False)

model = dict(
    pretrained=None,  # the base's ResNet URL; weights come from backbone.init_cfg
    backbone=dict(
        _delete_=True,
        type='LOLViTBackbone',
        arch='x',
        out_indices=(1, 2, 3, 4),
        frozen_stages=-1,
        norm_eval=True,
        init_cfg=None),  # no ImageNet weights are published; see docs/mm.md
    neck=dict(in_channels=[64, 96, 128, 192]))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=1e-6, begin=0, end=40000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4000))
train_dataloader = dict(batch_size=4)  # x 8 GPUs
auto_scale_lr = dict(enable=False, base_batch_size=32)

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='AlignResize', scale=(2048, 512), keep_ratio=True, size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False)
custom_hooks = [dict(type='CudnnDeterministicHook')]  # see fpn_lsnet_t_ade20k.py
