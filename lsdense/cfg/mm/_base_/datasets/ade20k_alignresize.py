# mmseg's ADE20K set with the official LSNet Semantic FPN test resize (THU-MIG/lsnet
# segmentation/configs/_base_/datasets/ade20k.py): keep-ratio resize to (2048, 512), then each
# side up to a multiple of 32 (AlignResize, lsdense.mm.transforms; needs lsdense.mmseg imported).
_base_ = 'mmseg::_base_/datasets/ade20k.py'

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='AlignResize', scale=(2048, 512), keep_ratio=True, size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
