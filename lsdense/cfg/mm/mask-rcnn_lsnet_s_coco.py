# Mask R-CNN with LSNet-S on COCO 2017, the official LSNet recipe (Wang et al., CVPR 2025;
# THU-MIG/lsnet detection/configs/mask_rcnn_lsnet_s_fpn_1x_coco.py).
# Target box AP 37.41 / mask AP 34.83 on val2017 (official log, epoch 12; the paper rounds them
# to 37.4 / 34.8).
# Same recipe as mask-rcnn_lsnet_t_coco.py (LSNet-T); only the backbone variant and the
# neck input widths change.
_base_ = './mask-rcnn_lsnet_t_coco.py'

checkpoint_file = 'https://huggingface.co/jameslahm/lsnet/resolve/main/lsnet_s.pth'
model = dict(backbone=dict(arch='s', init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
             neck=dict(in_channels=[96, 192, 320, 448]))
