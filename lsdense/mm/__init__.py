"""Shared MMDetection 3.x / MMSegmentation 1.x adapter code.

Import ``lsdense.mmdet`` or ``lsdense.mmseg`` (e.g. through a config's
``custom_imports``) to register the modules; this package itself imports
nothing from mm* until one of its submodules is used:

* :mod:`.backbones`: ``LSNetBackbone``, ``LOLViTBackbone``, ``LiSANetBackbone``, ``HyLiSANetBackbone``,
  ``LiSANetIBackbone``
* :mod:`.necks`: ``LSNetFPN`` (mmdet only)
* :mod:`.transforms`: ``AlignResize``, ``CudnnDeterministicHook`` (mmseg; official LSNet recipe)
* :mod:`.register`: registration in each framework's ``MODELS``
* :mod:`.safe_load`: torch weights-only allow-list for mmengine checkpoints
* :mod:`.checks`: pre-flight checks of a config, its datasets and checkpoints (all problems at once)
* :mod:`.hooks`: ``VOCClassNamesHook`` (mmdet; VOC tables name the config's classes)
* :mod:`.optim`: ``NoWeightDecayOptimWrapperConstructor`` (no decay on ``no_weight_decay()``)
* :mod:`.runner`: ``train`` / ``test`` (what ``tools/train.py`` / ``tools/test.py`` call)
* :mod:`.convert`: official LSNet dense checkpoints -> our configs
* :mod:`.demo`: the quickstart (toy data, train, evaluate, visualise)
"""
