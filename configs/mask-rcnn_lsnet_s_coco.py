# Mask R-CNN with LSNet-S on COCO 2017, the LSNet paper's protocol (Wang et al., CVPR 2025,
# Mask R-CNN table): target box AP 37.4 / mask AP 34.8 on val2017.
# Same recipe as mask-rcnn_lsnet_t_coco.py (LSNet-T); only the backbone variant and the
# neck input widths change.
_base_ = './mask-rcnn_lsnet_t_coco.py'

model = dict(backbone=dict(arch='s', init_cfg=dict(type='Pretrained', checkpoint='checkpoints/lsnet_s.pth')),
             neck=dict(in_channels=[96, 192, 320, 448]))
