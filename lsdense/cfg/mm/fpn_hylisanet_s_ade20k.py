# Semantic FPN with HyLiSANet-S on ADE20K (Kwon et al., LiSA, Tab. 10): target mIoU 49.3.
# Recipe (paper: 80k iterations, drop path 0.15, "the same setting as PVT"): AdamW lr 1e-4,
# betas (0.9, 0.999), wd 1e-4 (none on the LiSA kernels r1/r2 and norms), poly schedule
# (power 0.9, min lr 1e-6), 4 images/GPU x 4 GPUs, crop 512 x 512, scale (2048, 512).
# No ImageNet weights are published: give yours with init_cfg=dict(type='Pretrained', ...).
# Same recipe and widths as fpn_lisanet_s_ade20k.py; HyLiSANet swaps stages 1-2 for conv blocks.
_base_ = './fpn_lisanet_s_ade20k.py'

model = dict(backbone=dict(type='HyLiSANetBackbone'))  # the same arguments as LiSANetBackbone
