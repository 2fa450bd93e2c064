#!/usr/bin/env bash
# Idempotent set-up: .venv/ with the whole pinned stack (constraints.txt) and
# lsdense in editable mode. Run through `make install`.
#
# mmcv 2.1.0 ships only a source distribution. We build it once, with its
# compiled ops, and keep the wheel in $LSDENSE_WHEEL_DIR (outside git) so a
# second install takes seconds. Two visible patches are needed for torch 2.14:
#   * its setup.py imports pkg_resources -> setuptools<82, --no-build-isolation
#   * its setup.py hard-codes -std=c++14/17 -> raised to -std=c++20
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
WHEEL_DIR=${LSDENSE_WHEEL_DIR:-$HOME/.cache/lsdense/wheels}
PY=${PYTHON:-python3.11}
STAMP=$VENV/.lsdense-installed
HASH=$(cat constraints.txt pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)

if [[ -f $STAMP && "$(cat "$STAMP")" == "$HASH" ]]; then
    echo "[install] .venv is up to date (constraints unchanged)"
    exit 0
fi

say() { echo "[install] $*"; }
die() { echo "[install] ERROR: $*" >&2; exit 1; }

command -v "$PY" >/dev/null || die "$PY not found. Install Python 3.11 (or set PYTHON=/path/to/python3.11)."
[[ -d $VENV ]] || { say "creating $VENV"; "$PY" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip)
PIPI=(quiet_pip "$VENV/bin/python" -m pip install --disable-pip-version-check -c constraints.txt)

# pip warns once per package about find-links folders this machine's pip.conf names but
# that do not exist; drop only those lines, keep every other message and pip's exit code.
quiet_pip() { "$@" 2>&1 | { grep -v "^WARNING: Location 'file://" || true; }; return "${PIPESTATUS[0]}"; }

say "base tools (setuptools<82 keeps pkg_resources for mmcv's setup.py)"
"${PIPI[@]}" -q --upgrade pip wheel "setuptools<82" ninja
say "torch, torchvision, numpy"
"${PIPI[@]}" -q torch torchvision numpy

mkdir -p "$WHEEL_DIR"
MMCV_WHEEL=$(ls "$WHEEL_DIR"/mmcv-2.1.0-*.whl 2>/dev/null | head -1 || true)
if [[ -z $MMCV_WHEEL ]]; then
    say "building mmcv 2.1.0 with ops from source (about 25 minutes on 2 cores; done once, cached in $WHEEL_DIR)"
    command -v g++ >/dev/null || die "g++ not found: apt-get install build-essential"
    "${PIPI[@]}" -q opencv-python pyyaml yapf addict packaging mmengine
    BUILD=$(mktemp -d)
    quiet_pip "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation -d "$BUILD" mmcv==2.1.0
    tar -xzf "$BUILD"/mmcv-2.1.0.tar.gz -C "$BUILD"
    say "patching mmcv setup.py: -std=c++1x -> -std=c++20 (torch 2.14 headers need C++20)"
    sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$BUILD"/mmcv-2.1.0/setup.py
    grep -q -- '-std=c++20' "$BUILD"/mmcv-2.1.0/setup.py || die "mmcv setup.py patch did not apply"
    (cd "$BUILD"/mmcv-2.1.0 && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} FORCE_CUDA=0 \
        "$VENV/bin/python" -m pip wheel -v --no-build-isolation --no-deps -w "$WHEEL_DIR" . \
        > "$BUILD"/build.log 2>&1) || {
        tail -30 "$BUILD"/build.log >&2
        die "mmcv build failed (full log: $BUILD/build.log). Needs g++ >= 10 and the pinned torch in .venv."
    }
    MMCV_WHEEL=$(ls "$WHEEL_DIR"/mmcv-2.1.0-*.whl | head -1)
    rm -rf "$BUILD"
fi
say "mmcv from $MMCV_WHEEL"
"${PIPI[@]}" -q "$MMCV_WHEEL"

say "lsdense[all,dev] (editable) with mmdet, mmsegmentation, ultralytics, timm"
"${PIPI[@]}" -q -e ".[all,dev]"

"$VENV/bin/python" - <<'PY' || die "installed stack failed its import check"
import torch, torchvision, timm, mmcv, mmdet, mmseg, ultralytics
from mmcv.ops import nms, RoIAlign  # compiled ops must be present
import lsdense
print(f"[install] ok: torch {torch.__version__}, timm {timm.__version__}, mmcv {mmcv.__version__}, "
      f"mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, ultralytics {ultralytics.__version__}")
PY
echo "$HASH" > "$STAMP"
