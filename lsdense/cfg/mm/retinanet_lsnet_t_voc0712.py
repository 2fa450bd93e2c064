# RetinaNet with LSNet-T on Pascal VOC 07+12 (test: VOC2007 test, VOC mAP@0.5, 11 points as mmdet).
# No paper number: LSNet reports COCO only. mmdet's VOC schedule (07+12 trainval repeated 3 times,
# 4 epochs, step at 3, scale (1000, 600)) with the official LSNet detection optimiser: AdamW lr 1e-4,
# betas (0.9, 0.999), wd 0.05 (none on attention_biases only), 500-iter linear warm-up,
# 2 images/GPU x 8 GPUs, backbone BatchNorm frozen (norm_eval), seed 0.
# ImageNet weights: the official lsnet_t.pth (huggingface.co/jameslahm/lsnet), downloaded once
# into torch.hub's cache ($TORCH_HOME/hub/checkpoints), as mmdet's configs name theirs;
# offline, the pre-flight names the file to put there.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/voc0712.py',
    './_base_/schedules/adamw_1x_voc0712.py',
    'mmdet::_base_/default_runtime.py',
    'mmdet::retinanet/retinanet_tta.py'  # tools/test.py --tta
]
custom_imports = dict(imports=['lsdense.mmdet'], allow_failed_imports=False)
# per-class tables name metainfo's classes, not VOC's 20 (mmdet's VOCMetric; lsdense/mm/hooks.py)
custom_hooks = [dict(type='VOCClassNamesHook')]

checkpoint_file = 'https://huggingface.co/jameslahm/lsnet/resolve/main/lsnet_t.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='LSNetBackbone',
        arch='t',
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    bbox_head=dict(num_classes=20),
    neck=dict(in_channels=[64, 128, 256, 384], start_level=0, num_outs=5))

train_dataloader = dict(batch_size=2)  # x 8 GPUs
randomness = dict(seed=0)  # official dist_train.sh: --seed 0 (not deterministic)
