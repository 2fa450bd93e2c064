"""Small synthetic datasets in real dataset layouts, so training and tests run offline."""

# COCO / VOC / ADE20K layouts of procedural shape scenes (mm quickstart, tools/make_toy_data.py)
from .ade import make_ade20k  # noqa: E402,F401
from .coco import make_coco  # noqa: E402,F401
from .voc import make_voc  # noqa: E402,F401
