# Semantic FPN with LSNet-T on ADE20K, the official LSNet recipe (Wang et al., CVPR 2025;
# THU-MIG/lsnet segmentation/configs/sem_fpn/fpn_lsnet_t_ade20k_40k.py and train.sh).
# Target mIoU 40.06, single scale (official log, last iteration; the paper rounds it to 40.1).
# Recipe: AdamW lr 2e-4, betas (0.9, 0.999), wd 1e-4 on every parameter (the official optimizer
# exempts nothing), poly schedule (power 0.9, min lr 1e-6) over 40k iterations, 4 images/GPU x 8
# GPUs, crop 512 x 512, scale (2048, 512); backbone BatchNorm in eval mode while training (the
# official backbone's train() always freezes it: ImageNet statistics are kept); test: keep-ratio
# resize to (2048, 512), then each side resized up to a multiple of 32 (AlignResize); seed 0,
# deterministic cuDNN. Neck: FPN over the four stages (strides 8-64), 4 outputs.
# ImageNet weights: the official lsnet_t.pth (huggingface.co/jameslahm/lsnet), downloaded once
# into torch.hub's cache ($TORCH_HOME/hub/checkpoints), as mmdet's configs name theirs;
# offline, the pre-flight names the file to put there.
# FPNHead's feature_strides only set the relative upsampling (x2 per level), so the default
# [4, 8, 16, 32] builds the same head for LSNet's strides 8-64.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    './_base_/datasets/ade20k_alignresize.py',
    'mmseg::_base_/default_runtime.py',
    './_base_/schedules/adamw_poly_40k.py'
]
custom_imports = dict(imports=['lsdense.mmseg'], allow_failed_imports=False)

crop_size = (512, 512)  # as mmseg's sem_fpn/fpn_r50_4xb4-*_ade20k-512x512.py
data_preprocessor = dict(size=crop_size)

checkpoint_file = 'https://huggingface.co/jameslahm/lsnet/resolve/main/lsnet_t.pth'
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=150),
    pretrained=None,  # the base's ResNet URL; weights come from backbone.init_cfg
    backbone=dict(
        _delete_=True,
        type='LSNetBackbone',
        arch='t',
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    neck=dict(in_channels=[64, 128, 256, 384]))

train_dataloader = dict(batch_size=4)  # x 8 GPUs

# official: train.py --seed 0 --deterministic (mmseg 0.x: cudnn.deterministic, no benchmark).
# mmengine's randomness.deterministic would also set torch.use_deterministic_algorithms, which
# makes the CUDA backward of bilinear/bicubic interpolate raise, so the hook sets cuDNN only.
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False)
custom_hooks = [dict(type='CudnnDeterministicHook')]
