# Real-data overfit check (issue 9, docs/realdata.md): Semantic FPN + LSNet-T trained from scratch
# on the 4 real photos of ../shared/realdata/seg_voc_ade (ADE20K layout, VOC2012 masks remapped to
# ADE-150 ids; 0 = other, 255 = VOC's object outlines) and evaluated with IoUMetric (mIoU) on
# the same 4 images: training/ and validation/ together, since the validation photo's classes
# (car, bus) occur in no training photo.
# The quickstart segmentor (../quickstart/fpn_lsnet_t_toyade20k.py) unchanged; what changes:
#   * data: the real files; metainfo keeps the 7 ADE-150 classes that occur (mmseg maps their
#     ids, every other id is ignored like ADE's 'other');
#   * whole images at ~320 x 240, no crop or flip (the evaluation images are the training
#     images), padded to a multiple of 32;
#   * schedule: AdamW lr 2e-3 with clipping, 20-iteration warm-up, poly decay over 100
#     iterations of batch 4 (the whole set).
_base_ = ['../quickstart/fpn_lsnet_t_toyade20k.py']
import os  # noqa: E402

# ../shared/realdata next to the checkout (physical path: configs/ links to lsdense/cfg/mm), or
# LSDENSE_REALDATA; checkout-only configs (not in the wheel)
realdata = os.environ.get('LSDENSE_REALDATA') or \
    os.path.realpath('{{ fileDirname }}/../../../../../shared/realdata')

data_root = f'{realdata}/seg_voc_ade/ADEChallengeData2016/'
classes = ('person', 'chair', 'car', 'sofa', 'bus', 'bottle', 'animal')
img_scale = (320, 240)
max_iters = 100

model = dict(
    data_preprocessor=dict(size=None, size_divisor=32),
    decode_head=dict(num_classes=len(classes)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
ade = dict(type='ADE20KDataset', data_root=data_root, metainfo=dict(classes=classes))


def _both_splits(pipeline):
    return dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(**ade, pipeline=pipeline,
                 data_prefix=dict(img_path=f'images/{s}', seg_map_path=f'annotations/{s}'))
            for s in ('training', 'validation')
        ])


train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=_both_splits(train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=_both_splits(test_pipeline))
test_dataloader = val_dataloader

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, begin=20, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
auto_scale_lr = dict(base_batch_size=4)
