# Real-data overfit check (issue 9, docs/realdata.md): RetinaNet + LSNet-T trained from scratch on
# the 7 real COCO photos of ../shared/realdata/coco_real (official labels: 41 polygons and 1 crowd
# RLE over 12 of the 80 categories; one photo has none) and evaluated with CocoMetric on the same images. Too few
# images to generalise; what it proves is that real COCO files, the detector and the metric work
# end to end and that the model fits real labels (random init: bbox mAP 0.000).
# The quickstart detector (../quickstart/retinanet_lsnet_t_toycoco.py) unchanged; what changes:
#   * data: the real files (found next to the repository, ../shared/realdata); the dataset's
#     metainfo keeps the 12 categories that occur, so the head predicts 12;
#   * no flip: the evaluation images are the training images, unflipped;
#   * schedule: AdamW lr 2e-3 (batch 7: the 6 labelled photos, one iteration per epoch; the 7th
#     photo, without instances, is evaluated only), 20-iteration
#     warm-up, 150 epochs with a step at 120.
_base_ = ['../quickstart/retinanet_lsnet_t_toycoco.py']
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

model = dict(bbox_head=dict(num_classes=len(classes)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
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
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[120], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
auto_scale_lr = dict(base_batch_size=7)
