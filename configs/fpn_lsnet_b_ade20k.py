# Semantic FPN with LSNet-B on ADE20K, the LSNet paper's protocol (Wang et al., CVPR 2025,
# segmentation table): target mIoU 43.0 (repo README: 43.1), single scale.
# Same recipe as fpn_lsnet_t_ade20k.py (LSNet-T); only the backbone variant and the
# neck input widths change.
_base_ = './fpn_lsnet_t_ade20k.py'

model = dict(backbone=dict(arch='b', init_cfg=dict(type='Pretrained', checkpoint='checkpoints/lsnet_b.pth')),
             neck=dict(in_channels=[128, 256, 384, 512]))
