# LSNet's Semantic FPN optimiser (THU-MIG/lsnet segmentation/configs/sem_fpn/*_40k.py) on mmseg's
# 40k schedule (mmseg _base_/schedules/schedule_40k.py): AdamW lr 2e-4, betas (0.9, 0.999), wd 1e-4
# on every parameter (the official optimiser exempts nothing), poly (power 0.9, min lr 1e-6) over
# 40k iterations, validation and checkpoints every 4000, auto_scale_lr base batch 32
# (4 images/GPU x 8 GPUs). Written out: see adamw_1x.py.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=1e-6, begin=0, end=40000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
auto_scale_lr = dict(enable=False, base_batch_size=32)
