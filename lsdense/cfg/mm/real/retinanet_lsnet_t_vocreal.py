# Real-data overfit check (issue 9, docs/realdata.md): RetinaNet + LSNet-T trained from scratch on
# the 4 real Pascal VOC photos of ../shared/realdata/voc0712_real (VOC2007 + VOC2012 trainval,
# official XML, one VOC2012 action XML with float coordinates and reordered fields; 6 boxes)
# and evaluated with VOCMetric (mAP@0.5, 11 points) on the same 4 images.
# The quickstart detector (../quickstart/retinanet_lsnet_t_toyvoc.py) unchanged; what changes:
#   * data: the real files; metainfo keeps the 4 VOC classes that occur (dog, person, train,
#     chair); the evaluation set is the training set (07 + 12 trainval), test pipeline;
#   * no flip (the evaluation images are the training images, unflipped);
#   * schedule: AdamW lr 2e-3 (batch 4 = the whole set), 20-iteration warm-up, 60 epochs of
#     one iteration with a step at 50.
_base_ = ['../quickstart/retinanet_lsnet_t_toyvoc.py']
import os  # noqa: E402

# ../shared/realdata next to the checkout (physical path: configs/ links to lsdense/cfg/mm), or
# LSDENSE_REALDATA; checkout-only configs (not in the wheel)
realdata = os.environ.get('LSDENSE_REALDATA') or \
    os.path.realpath('{{ fileDirname }}/../../../../../shared/realdata')

data_root = f'{realdata}/voc0712_real/VOCdevkit/'
classes = ('dog', 'person', 'train', 'chair')
img_scale = (320, 256)
max_epochs = 60

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
voc = dict(type='VOCDataset', data_root=data_root, metainfo=dict(classes=classes))


def _voc0712(pipeline, test_mode):
    # mmdet's XMLDataset refuses bbox_min_size in test mode: the filter is for training only
    extra = dict(test_mode=True) if test_mode else dict(
        filter_cfg=dict(filter_empty_gt=True, min_size=8, bbox_min_size=4))
    return dict(
        _delete_=True,
        type='ConcatDataset',
        ignore_keys=['dataset_type'],
        datasets=[
            dict(**voc, **extra, ann_file=f'VOC{year}/ImageSets/Main/trainval.txt',
                 data_prefix=dict(sub_data_root=f'VOC{year}/'), pipeline=pipeline)
            for year in (2007, 2012)
        ])


train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=_voc0712(train_pipeline, False))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=_voc0712(test_pipeline, True))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[50], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
auto_scale_lr = dict(base_batch_size=4)
