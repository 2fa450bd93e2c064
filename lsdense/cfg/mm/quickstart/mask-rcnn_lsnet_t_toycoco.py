# Quickstart: Mask R-CNN + LSNet-T (LSNetFPN, strides 4-64) on the toy COCO set with its polygon
# masks (tools/make_toy_data.py coco). The detector of ../mask-rcnn_lsnet_t_coco.py unchanged,
# trained from scratch (BatchNorm trains) on 3 shape classes at ~256 x 320: AdamW lr 1e-3 with
# gradient clipping, batch 4, 6 epochs. Slower per image than the RetinaNet quickstart (256-wide
# FPN at stride 4, RoI heads): about 5 s per iteration, 50 minutes on 2 CPU cores; not in the demo.
_base_ = ['../mask-rcnn_lsnet_t_coco.py']

data_root = 'data/toy/coco/'
classes = ('circle', 'square', 'triangle')
img_scale = (320, 256)

model = dict(
    backbone=dict(norm_eval=False, init_cfg=None),
    roi_head=dict(
        bbox_head=dict(num_classes=len(classes)), mask_head=dict(num_classes=len(classes))))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# from scratch, BatchNorm trains: no weight decay on norm layers (the official recipe decays
# them, fine-tuning from ImageNet with BatchNorm frozen)
optim_wrapper = dict(optimizer=dict(lr=1e-3), clip_grad=dict(max_norm=10, norm_type=2),
                     paramwise_cfg=dict(norm_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[5], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=2, max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=4)
randomness = dict(seed=0)
