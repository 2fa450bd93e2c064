# The LiSA paper's Semantic FPN recipe (80k iterations, "the same setting as PVT"): adamw_poly_40k.py
# with lr 1e-4 over 80k iterations (validation and checkpoints every 8000), no weight decay on norm
# layers nor on what the backbone's no_weight_decay() names (LiSANet: the LiSA kernels r1/r2),
# auto_scale_lr base batch 16 (4 images/GPU x 4 GPUs).
_base_ = './adamw_poly_40k.py'

optim_wrapper = dict(
    constructor='NoWeightDecayOptimWrapperConstructor',
    optimizer=dict(lr=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=1e-6, begin=0, end=80000, by_epoch=False)
]
train_cfg = dict(max_iters=80000, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
auto_scale_lr = dict(base_batch_size=16)
