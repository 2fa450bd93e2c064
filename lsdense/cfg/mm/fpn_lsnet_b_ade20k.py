# Semantic FPN with LSNet-B on ADE20K, the official LSNet recipe (Wang et al., CVPR 2025;
# THU-MIG/lsnet segmentation/configs/sem_fpn/fpn_lsnet_b_ade20k_40k.py).
# Target mIoU 43.09, single scale (official log, last iteration); the paper's table gives 43.0.
# Same recipe as fpn_lsnet_t_ade20k.py (LSNet-T); only the backbone variant and the
# neck input widths change.
_base_ = './fpn_lsnet_t_ade20k.py'

checkpoint_file = 'https://huggingface.co/jameslahm/lsnet/resolve/main/lsnet_b.pth'
model = dict(backbone=dict(arch='b', init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
             neck=dict(in_channels=[128, 256, 384, 512]))
