# Mask R-CNN with LOLViT-X on COCO 2017.
# No paper number for this head: LOLViT reports COCO only with a YOLO head (LOLViT-X:
# 41.9 mAP50-95 at 640, Tab. 5; see configs/yolo/).
# Same recipe as mask-rcnn_lolvit_s_coco.py (LOLViT-S); only the backbone variant and the
# neck input widths change.
_base_ = './mask-rcnn_lolvit_s_coco.py'

model = dict(backbone=dict(arch='x'),
             neck=dict(in_channels=[64, 96, 128, 192]))
