# Quickstart: RetinaNet + LSNet-T on the toy VOC 07+12 set (tools/make_toy_data.py voc), VOC mAP@0.5.
# Same detector and optimiser as ../retinanet_lsnet_t_voc0712.py with the RetinaNet COCO
# quickstart's CPU settings (see retinanet_lsnet_t_toycoco.py): from scratch, 64-wide neck/head
# with 2 GroupNorm head convs, AdamW lr 2e-3 with gradient clipping, images ~256 x 320.
_base_ = ['../retinanet_lsnet_t_voc0712.py']

data_root = 'data/toy/VOCdevkit/'
classes = ('circle', 'square', 'triangle')
img_scale = (320, 256)
max_epochs = 8

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
voc = dict(type='VOCDataset', data_root=data_root, metainfo=dict(classes=classes),
           filter_cfg=dict(filter_empty_gt=True, min_size=8, bbox_min_size=4))
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        ignore_keys=['dataset_type'],
        datasets=[
            dict(**voc, ann_file='VOC2007/ImageSets/Main/trainval.txt',
                 data_prefix=dict(sub_data_root='VOC2007/'), pipeline=train_pipeline),
            dict(**voc, ann_file='VOC2012/ImageSets/Main/trainval.txt',
                 data_prefix=dict(sub_data_root='VOC2012/'), pipeline=train_pipeline)
        ]))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader

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
