"""The oldest release of each dependency lsdense runs on, checked when it is imported.

The same bounds are in ``pyproject.toml`` (``tests/test_wheel.py`` checks that the two
agree). Why each minimum: torch 2.7 has ``torch.compiler.is_exporting`` (the forms refuse
``torch.export`` through it); timm 1.0.29 exports ``timm.layers.get_device_dtype`` and
``calculate_drop_path_rates``; mmengine 0.10 / mmdet 3.3 / mmsegmentation 1.2 /
ultralytics 8.4 are the API generations the adapters are written against (their next
minor versions are excluded in ``pyproject.toml``). Tested with the versions pinned in
``constraints.txt``.
"""
from __future__ import annotations

from importlib import metadata

from torch.torch_version import TorchVersion

__all__ = ["MINIMUM", "require"]

# distribution name -> (minimum, the extra that installs it)
MINIMUM = {
    "torch": ("2.7", None),
    "timm": ("1.0.29", None),
    "mmengine": ("0.10", "mmdet"),
    "mmdet": ("3.3", "mmdet"),
    "mmsegmentation": ("1.2", "mmseg"),
    "ultralytics": ("8.4", "yolo"),
}


def require(*names: str) -> None:
    """Raise ``ImportError`` naming the install command unless each distribution in ``names``
    is installed at its :data:`MINIMUM` version or newer."""
    for name in names:
        minimum, extra = MINIMUM[name]
        spec = f"lsdense[{extra}]" if extra else "lsdense"
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise ImportError(f"lsdense needs {name}>={minimum}, which is not installed: "
                              f"pip install '{spec}'") from None
        if TorchVersion(have) < tuple(int(p) for p in minimum.split(".")):
            raise ImportError(f"lsdense needs {name}>={minimum}, found {name} {have}: "
                              f"pip install '{spec}' (or pip install '{name}>={minimum}')")
