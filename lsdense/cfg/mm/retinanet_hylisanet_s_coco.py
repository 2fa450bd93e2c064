# RetinaNet with HyLiSANet-S on COCO 2017. No paper number: LiSA reports Mask R-CNN only (Tab. 9:
# box AP 47.7); this config uses that recipe with mmdet's RetinaNet.
# Recipe (paper: "1x schedule, the same recipe as Swin"): AdamW lr 1e-4, betas (0.9, 0.999),
# wd 0.05 (none on the LiSA kernels r1/r2 and norms), 1000-iter linear warm-up (ratio 0.001),
# 12 epochs with steps at 8 and 11, 2 images/GPU x 8 GPUs, scale (1333, 800), drop path 0.1.
# No ImageNet weights are published: give yours with init_cfg=dict(type='Pretrained', ...).
# Levels 1-3 (strides 8-32) feed the FPN (start_level=1, as for ResNet); strides 8-128.
# Same recipe and widths as retinanet_lisanet_s_coco.py; HyLiSANet swaps stages 1-2 for conv blocks.
_base_ = './retinanet_lisanet_s_coco.py'

model = dict(backbone=dict(type='HyLiSANetBackbone'))  # the same arguments as LiSANetBackbone
