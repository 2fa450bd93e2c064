# adamw_1x.py's optimiser on mmdet's Pascal VOC 07+12 schedule (pascal_voc/retinanet_r50_fpn_1x_voc0712:
# the 07+12 trainval set repeated 3 times, 4 epochs, step at 3), with the 500-iteration warm-up.
_base_ = './adamw_1x.py'

max_epochs = 4
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[3], gamma=0.1)
]
