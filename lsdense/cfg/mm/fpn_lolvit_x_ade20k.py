# Semantic FPN with LOLViT-X on ADE20K. No paper number: LOLViT (Li et al., arXiv 2508.01385)
# reports segmentation only on BDD100K with A-YOLOM heads (configs/yolo/). This config uses the
# official LSNet Semantic FPN recipe (as fpn_lsnet_t_ade20k.py): AdamW lr 2e-4, betas (0.9, 0.999),
# wd 1e-4 on every parameter, poly schedule (power 0.9, min lr 1e-6) over 40k iterations,
# 4 images/GPU x 8 GPUs, crop 512 x 512, scale (2048, 512), backbone BatchNorm in eval mode (meant
# for an ImageNet-initialised backbone: from scratch, set norm_eval=False), AlignResize at test,
# seed 0 with deterministic cuDNN. Levels 1-4 (strides 4-32).
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    './_base_/datasets/ade20k_alignresize.py',
    'mmseg::_base_/default_runtime.py',
    './_base_/schedules/adamw_poly_40k.py'
]
custom_imports = dict(imports=['lsdense.mmseg'], allow_failed_imports=False)

crop_size = (512, 512)  # as mmseg's sem_fpn/fpn_r50_4xb4-*_ade20k-512x512.py
data_preprocessor = dict(size=crop_size)

model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=150),
    pretrained=None,  # the base's ResNet URL; weights come from backbone.init_cfg
    backbone=dict(
        _delete_=True,
        type='LOLViTBackbone',
        arch='x',
        out_indices=(1, 2, 3, 4),
        frozen_stages=-1,
        norm_eval=True,
        init_cfg=None),  # no ImageNet weights are published; see docs/mm.md
    neck=dict(in_channels=[64, 96, 128, 192]))

train_dataloader = dict(batch_size=4)  # x 8 GPUs

randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False)
custom_hooks = [dict(type='CudnnDeterministicHook')]  # see fpn_lsnet_t_ade20k.py
