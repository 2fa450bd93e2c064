# Semantic FPN with LSNet-S on ADE20K, the LSNet paper's protocol (Wang et al., CVPR 2025,
# segmentation table): target mIoU 41.0 (repo README: 41.6), single scale.
# Same recipe as fpn_lsnet_t_ade20k.py (LSNet-T); only the backbone variant and the
# neck input widths change.
_base_ = './fpn_lsnet_t_ade20k.py'

model = dict(backbone=dict(arch='s', init_cfg=dict(type='Pretrained', checkpoint='checkpoints/lsnet_s.pth')),
             neck=dict(in_channels=[96, 192, 320, 448]))
