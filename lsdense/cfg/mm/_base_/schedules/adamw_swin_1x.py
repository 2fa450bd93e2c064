# The LiSA paper's detection recipe ("1x schedule, the same recipe as Swin"): adamw_1x.py with a
# 1000-iteration warm-up and no weight decay on norm layers either (besides what the backbone's
# no_weight_decay() names: LiSANet's LiSA kernels r1/r2).
_base_ = './adamw_1x.py'

optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
