# RetinaNet with LOLViT-S on Pascal VOC 07+12 (test: VOC2007 test, VOC mAP@0.5, 11 points as mmdet).
# Paper reference: LOLViT-S reaches 74.5 mAP50 on VOC 07+12 with a YOLO head at 640 (Li et al.,
# Tab. 7; configs/yolo/lolvit_s-voc.yaml); no RetinaNet number exists. mmdet's VOC schedule
# (07+12 trainval repeated 3 times, 4 epochs, step at 3, scale (1000, 600)) with LSNet's detection
# optimiser: AdamW lr 1e-4, betas (0.9, 0.999), wd 0.05 (none on DReLu's DP scalars),
# 500-iter linear warm-up, 2 images/GPU x 8 GPUs, backbone BatchNorm frozen (norm_eval), seed 0.
_base_ = ['mmdet::pascal_voc/retinanet_r50_fpn_1x_voc0712.py']
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

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    # as the official LSNet recipe: only the learnable scalars (here DReLu's DP, there
    # attention_biases) are exempt; norm layers are decayed
    paramwise_cfg=dict(custom_keys={'drelu.dp': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=4, by_epoch=True, milestones=[3], gamma=0.1)
]
train_dataloader = dict(batch_size=2)  # x 8 GPUs
auto_scale_lr = dict(enable=False, base_batch_size=16)
randomness = dict(seed=0)  # as the official LSNet detection runs
