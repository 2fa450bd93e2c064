# Mask R-CNN with HyLiSANet-S on COCO 2017 (Kwon et al., LiSA, Tab. 9): target box AP 47.7 / mask AP 42.6.
# Recipe (paper: "1x schedule, the same recipe as Swin"): AdamW lr 1e-4, betas (0.9, 0.999),
# wd 0.05 (none on the LiSA kernels r1/r2 and norms), 1000-iter linear warm-up (ratio 0.001),
# 12 epochs with steps at 8 and 11, 2 images/GPU x 8 GPUs, scale (1333, 800), drop path 0.1.
# No ImageNet weights are published: give yours with init_cfg=dict(type='Pretrained', ...).
# Same recipe and widths as mask-rcnn_lisanet_s_coco.py; HyLiSANet swaps stages 1-2 for conv blocks.
_base_ = './mask-rcnn_lisanet_s_coco.py'

model = dict(backbone=dict(type='HyLiSANetBackbone'))  # the same arguments as LiSANetBackbone
