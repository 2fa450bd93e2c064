#!/usr/bin/env python
"""Put timm's own model tests (``tests/test_models.py`` of the installed timm) in the cache.

Run by ``scripts/install.sh`` (``make install``): the file comes from the installed
timm version's source distribution on PyPI, the package registry the install already
uses, so ``make test`` (``tests/test_timm_suite.py``) never touches the network. The
file is not vendored: it is timm's code, read where timm publishes it.

Prints the path; exits 1 with the reason when the sdist cannot be fetched.
"""
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


def cached_path() -> Path:
    """``$LSDENSE_CACHE`` (default ``~/.cache/lsdense``)/timm-tests/<timm version>/test_models.py."""
    import timm
    cache = Path(os.environ.get("LSDENSE_CACHE", Path.home() / ".cache" / "lsdense"))
    return cache / "timm-tests" / timm.__version__ / "test_models.py"


def fetch() -> Path:
    import timm
    path = cached_path()
    if path.is_file():
        return path
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "-q", "-d", tmp, f"timm=={timm.__version__}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        sdists = list(Path(tmp).glob("timm-*.tar.gz"))
        if proc.returncode or not sdists:
            sys.exit(f"could not download timm {timm.__version__}'s sdist from PyPI (its "
                     f"tests/test_models.py is what tests/test_timm_suite.py runs): "
                     f"{proc.stderr.strip()[-500:]}")
        with tarfile.open(sdists[0]) as tar:
            data = tar.extractfile(f"timm-{timm.__version__}/tests/test_models.py").read()
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    part.write_bytes(data)
    part.replace(path)
    return path


if __name__ == "__main__":
    print(fetch())
