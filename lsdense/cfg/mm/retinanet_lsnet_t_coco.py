# RetinaNet with LSNet-T on COCO 2017, the official LSNet recipe (Wang et al., CVPR 2025;
# THU-MIG/lsnet detection/configs/retinanet_lsnet_t_fpn_1x_coco.py and dist_train.sh).
# Target box AP 34.16 on val2017 (official log, epoch 12; the paper rounds it to 34.2).
# Recipe: AdamW lr 1e-4, betas (0.9, 0.999), wd 0.05 (none on attention_biases only: the official
# optimizer decays the norm layers too), 500-iter linear warm-up (ratio 0.001), 12 epochs with
# steps at 8 and 11, 2 images/GPU x 8 GPUs, scale (1333, 800), backbone BatchNorm frozen
# (norm_eval), seed 0. FPN over the four stages (strides 8-64) with an extra conv on the input:
# strides 8-128.
# ImageNet weights: the official lsnet_t.pth (huggingface.co/jameslahm/lsnet), downloaded once
# into torch.hub's cache ($TORCH_HOME/hub/checkpoints), as mmdet's configs name theirs;
# offline, the pre-flight names the file to put there.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    './_base_/schedules/adamw_1x.py',
    'mmdet::_base_/default_runtime.py',
    'mmdet::retinanet/retinanet_tta.py'
]
custom_imports = dict(imports=['lsdense.mmdet'], allow_failed_imports=False)

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
    neck=dict(in_channels=[64, 128, 256, 384], start_level=0, num_outs=5))

train_dataloader = dict(batch_size=2)  # x 8 GPUs
randomness = dict(seed=0)  # official dist_train.sh: --seed 0 (not deterministic)
