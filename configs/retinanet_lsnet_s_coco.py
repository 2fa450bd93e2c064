# RetinaNet with LSNet-S on COCO 2017, the LSNet paper's protocol (Wang et al., CVPR 2025,
# RetinaNet table): target box AP 36.7 on val2017.
# Same recipe as retinanet_lsnet_t_coco.py (LSNet-T); only the backbone variant and the
# neck input widths change.
_base_ = './retinanet_lsnet_t_coco.py'

model = dict(backbone=dict(arch='s', init_cfg=dict(type='Pretrained', checkpoint='checkpoints/lsnet_s.pth')),
             neck=dict(in_channels=[96, 192, 320, 448]))
