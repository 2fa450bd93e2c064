# LSNet's detection optimiser (THU-MIG/lsnet detection/configs/*_lsnet_*_fpn_1x_coco.py) on mmdet's
# 1x schedule (mmdet _base_/schedules/schedule_1x.py): AdamW lr 1e-4, betas (0.9, 0.999), wd 0.05,
# 500-iteration linear warm-up (ratio 0.001), 12 epochs with steps at 8 and 11, auto_scale_lr base
# batch 16 (2 images/GPU x 8 GPUs).
# Weight decay: none on what the backbone's no_weight_decay() names (LSNet: attention_biases;
# LOLViT: DReLu's DP scalars), through lsdense's constructor; norm layers are decayed, as official.
# Written out rather than inheriting mmdet's file: each 'mmdet::' base costs mmengine ~0.3 s of
# metafile parsing per config load.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='NoWeightDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05))
auto_scale_lr = dict(enable=False, base_batch_size=16)
