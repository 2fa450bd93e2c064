# RetinaNet with LSNet-B on COCO 2017, the LSNet paper's protocol (Wang et al., CVPR 2025,
# RetinaNet table): target box AP 39.2 on val2017.
# Same recipe as retinanet_lsnet_t_coco.py (LSNet-T); only the backbone variant and the
# neck input widths change.
_base_ = './retinanet_lsnet_t_coco.py'

model = dict(backbone=dict(arch='b', init_cfg=dict(type='Pretrained', checkpoint='checkpoints/lsnet_b.pth')),
             neck=dict(in_channels=[128, 256, 384, 512]))
