# Real-data overfit check (issue 9, docs/realdata.md): Mask R-CNN + LSNet-T trained from scratch on
# the 7 real COCO photos of ../shared/realdata/coco_real (official labels: 41 polygons and 1 crowd
# RLE, uncompressed, over 12 categories; one photo has none) and evaluated with CocoMetric, bbox and segm, on the
# same images.
# The quickstart detector (../quickstart/mask-rcnn_lsnet_t_toycoco.py: LSNetFPN strides 4-64,
# RPN, RoI box and mask heads) trained the way the RetinaNet real-data check is; what changes
# for a CPU:
#   * data: the real files; metainfo keeps the 12 categories that occur;
#   * widths: FPN, RPN and RoI heads 64 wide (box head fc 256, mask head 4 convs of 64) and
#     128 sampled RoIs per image instead of 512: the 256-wide stride-4 FPN and mask head are
#     most of a CPU step (as in the RetinaNet quickstart);
#   * no flip; AdamW lr 2e-3 with clipping, batch 7 (the 6 labelled photos), 20-iteration warm-up,
#     150 epochs with a step at 120.
_base_ = ['../quickstart/mask-rcnn_lsnet_t_toycoco.py']
import os  # noqa: E402

# ../shared/realdata next to the checkout (physical path: configs/ links to lsdense/cfg/mm), or
# LSDENSE_REALDATA; checkout-only configs (not in the wheel)
realdata = os.environ.get('LSDENSE_REALDATA') or \
    os.path.realpath('{{ fileDirname }}/../../../../../shared/realdata')

data_root = f'{realdata}/coco_real/'
classes = ('person', 'car', 'motorcycle', 'bus', 'cat', 'bear', 'handbag', 'skateboard', 'bottle',
           'couch', 'bed', 'remote')
img_scale = (320, 256)
max_epochs = 150
width = 64

model = dict(
    neck=dict(out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=256, num_classes=len(classes)),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width, num_classes=len(classes))),
    train_cfg=dict(rcnn=dict(sampler=dict(num=128))))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
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
    batch_size=7,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=7,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[120], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
auto_scale_lr = dict(base_batch_size=7)
