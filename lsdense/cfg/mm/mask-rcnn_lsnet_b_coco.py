# Mask R-CNN with LSNet-B on COCO 2017, the official LSNet recipe (Wang et al., CVPR 2025;
# THU-MIG/lsnet detection/configs/mask_rcnn_lsnet_b_fpn_1x_coco.py).
# Target box AP 40.83 / mask AP 37.79 on val2017 (official log, epoch 12; the paper rounds them
# to 40.8 / 37.8).
# Same recipe as mask-rcnn_lsnet_t_coco.py (LSNet-T); only the backbone variant and the
# neck input widths change.
_base_ = './mask-rcnn_lsnet_t_coco.py'

checkpoint_file = 'https://huggingface.co/jameslahm/lsnet/resolve/main/lsnet_b.pth'
model = dict(backbone=dict(arch='b', init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
             neck=dict(in_channels=[128, 256, 384, 512]))
