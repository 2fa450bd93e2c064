# Quickstart: Semantic FPN + LSNet-T on the toy ADE20K set (tools/make_toy_data.py ade20k), CPU in
# minutes. Same segmentor as ../fpn_lsnet_t_ade20k.py; what changes is what a laptop run needs:
#   * data: the toy files hold real ADE20K ids; 5 of them occur (sky, floor, box, tent, ball), so
#     the dataset's metainfo keeps those 5 classes (mmseg maps the ids) and the head predicts 5;
#   * images ~256 x 320, random 256 x 256 crops;
#   * backbone from scratch (no download), so BatchNorm trains (norm_eval=False) and norm layers
#     and attention biases get no weight decay (the official recipe decays everything);
#   * neck and head 64 wide instead of 256 / 128 (as in the RetinaNet quickstart: the wide ones
#     dominate a CPU step at this size);
#   * schedule: AdamW lr 2e-3 with gradient clipping, 30-iteration warm-up, poly decay,
#     300 iterations of batch 8 (about 2.5 minutes on 2 CPU cores).
_base_ = ['../fpn_lsnet_t_ade20k.py']

data_root = 'data/toy/ADEChallengeData2016/'
classes = ('sky', 'floor', 'box', 'tent', 'ball')
crop_size = (256, 256)
img_scale = (320, 256)
max_iters = 300

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(norm_eval=False, init_cfg=None),
    neck=dict(out_channels=64),
    decode_head=dict(in_channels=[64, 64, 64, 64], channels=64, num_classes=len(classes)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.75, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(lr=2e-3), clip_grad=dict(max_norm=10, norm_type=2),
    constructor='NoWeightDecayOptimWrapperConstructor',  # attention_biases: LSNet.no_weight_decay()
    paramwise_cfg=dict(norm_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, begin=30, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
auto_scale_lr = dict(base_batch_size=8)
randomness = dict(seed=0)
