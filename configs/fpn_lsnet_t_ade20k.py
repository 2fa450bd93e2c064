# Semantic FPN with LSNet-T on ADE20K, the LSNet paper's protocol (Wang et al., CVPR 2025,
# segmentation table): target mIoU 40.1, single scale.
# Recipe: AdamW lr 2e-4, betas (0.9, 0.999), wd 1e-4 (none on attention biases and norms), poly
# schedule (power 0.9, min lr 1e-6) over 40k iterations, 4 images/GPU x 8 GPUs, crop 512 x 512,
# scale (2048, 512). Neck: FPN over the four stages (strides 8-64), 4 outputs.
# ImageNet weights: lsnet_t.pth from huggingface.co/jameslahm/lsnet, saved as checkpoints/lsnet_t.pth.
# FPNHead's feature_strides only set the relative upsampling (x2 per level), so the default
# [4, 8, 16, 32] builds the same head for LSNet's strides 8-64.
_base_ = ['mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py']
custom_imports = dict(imports=['lsdense.mmseg'], allow_failed_imports=False)

model = dict(
    pretrained=None,  # the base's ResNet URL; weights come from backbone.init_cfg
    backbone=dict(
        _delete_=True,
        type='LSNetBackbone',
        arch='t',
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/lsnet_t.pth')),
    neck=dict(in_channels=[64, 128, 256, 384]))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys={'attention_biases': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=1e-6, begin=0, end=40000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4000))
train_dataloader = dict(batch_size=4)  # x 8 GPUs
auto_scale_lr = dict(enable=False, base_batch_size=32)
