# Quickstart: RetinaNet + LSNet-T on the toy COCO set (tools/make_toy_data.py coco), CPU in minutes.
# Same detector as ../retinanet_lsnet_t_coco.py (backbone, FPN over strides 8-64 + P6/P7, focal
# loss, anchors, AdamW); what changes is what a from-scratch laptop run needs:
#   * data: 3 shape classes, images ~256 x 320, metainfo classes from the toy annotations;
#   * backbone from scratch (no download), so BatchNorm trains (norm_eval=False);
#   * neck/head 64 wide with 2 head convs instead of 256 and 4: the 256-wide head is 80 % of a
#     CPU step at this size; GroupNorm in the head, as detectors trained from scratch need it
#     (He et al., "Rethinking ImageNet Pre-training"), and gradient clipping;
#   * schedule: AdamW lr 2e-3 (batch 8), 50-iteration warm-up, 8 epochs with a step at 6
#     (400 iterations, about 4 minutes on 2 CPU cores).
_base_ = ['../retinanet_lsnet_t_coco.py']

data_root = 'data/toy/coco/'
classes = ('circle', 'square', 'triangle')
img_scale = (320, 256)

model = dict(
    backbone=dict(norm_eval=False, init_cfg=None),
    neck=dict(out_channels=64),
    bbox_head=dict(
        num_classes=len(classes),
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

max_epochs = 8
# tools/test.py --tta: mmdet's retinanet_tta.py (3 scales x flip, merged by DetTTAModel) at
# this config's image size
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug',
         transforms=[[dict(type='Resize', scale=s, keep_ratio=True)
                      for s in ((240, 192), img_scale, (480, 384))],
                     [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
                     [dict(type='LoadAnnotations', with_bbox=True)],
                     [dict(type='PackDetInputs',
                           meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                      'scale_factor', 'flip', 'flip_direction'))]])
]

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# from scratch, BatchNorm trains: no weight decay on norm layers (the official recipe decays
# them, fine-tuning from ImageNet with BatchNorm frozen)
optim_wrapper = dict(optimizer=dict(lr=2e-3), clip_grad=dict(max_norm=10, norm_type=2),
                     paramwise_cfg=dict(norm_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[6], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=4, max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=8)
randomness = dict(seed=0)
