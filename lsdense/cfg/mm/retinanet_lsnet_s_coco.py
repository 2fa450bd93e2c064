# RetinaNet with LSNet-S on COCO 2017, the official LSNet recipe (Wang et al., CVPR 2025;
# THU-MIG/lsnet detection/configs/retinanet_lsnet_s_fpn_1x_coco.py).
# Target box AP 36.50 on val2017 (official log, epoch 12; the poster gives 36.7).
# Same recipe as retinanet_lsnet_t_coco.py (LSNet-T); only the backbone variant and the
# neck input widths change.
_base_ = './retinanet_lsnet_t_coco.py'

checkpoint_file = 'https://huggingface.co/jameslahm/lsnet/resolve/main/lsnet_s.pth'
model = dict(backbone=dict(arch='s', init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
             neck=dict(in_channels=[96, 192, 320, 448]))
