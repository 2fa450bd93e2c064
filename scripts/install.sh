#!/usr/bin/env bash
# Idempotent set-up: .venv/ with the whole pinned stack (constraints.txt) and
# lsdense in editable mode. Run through `make install`.
#
# mmcv 2.1.0 ships only a source distribution. We build it once, with its
# compiled ops, and keep the wheel in $LSDENSE_WHEEL_DIR/<key>/ (outside git) so a
# second install takes seconds. scripts/mmcv_build.py picks the key and the build:
# mmcv-2.1.0+torch2.14.1-cpu without a GPU, mmcv-2.1.0+torch2.14.1-cu130-sm90 with CUDA
# ops for an H100 when torch sees one (nvcc of torch's CUDA version needed: docs/gpu.md).
# Two visible patches are needed for torch 2.14:
#   * its setup.py imports pkg_resources -> setuptools<82, --no-build-isolation
#   * its setup.py hard-codes -std=c++14/17 -> raised to -std=c++20
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
WHEEL_DIR=${LSDENSE_WHEEL_DIR:-$HOME/.cache/lsdense/wheels}
PY=${PYTHON:-python3.11}
STAMP=$VENV/.lsdense-installed
HASH=$(cat constraints.txt pyproject.toml scripts/install.sh scripts/mmcv_build.py scripts/fetch_timm_tests.py | sha256sum | cut -c1-16)
MMCV_VERSION=2.1.0

# The stamp also holds the mmcv wheel key: the same .venv seen from a GPU machine (a shared
# home) must not keep the CPU build.
mmcv_key() { "$VENV/bin/python" scripts/mmcv_build.py plan --mmcv "$MMCV_VERSION" 2>/dev/null | sed -n 's/^MMCV_KEY=//p'; }
if [[ -f $STAMP && -x $VENV/bin/python && "$(cat "$STAMP")" == "$HASH $(mmcv_key)" ]]; then
    echo "[install] .venv is up to date (constraints unchanged)"
    "$VENV/bin/python" scripts/fetch_timm_tests.py >/dev/null  # a cleared cache: fetch again
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

PLAN=$("$VENV/bin/python" scripts/mmcv_build.py plan --mmcv "$MMCV_VERSION") || exit 1
eval "$PLAN"   # MMCV_KEY, MMCV_DEVICE (cpu|cuda), MMCV_CUDA_HOME, MMCV_ARCH_LIST, MMCV_CPATH
KEY_DIR=$WHEEL_DIR/$MMCV_KEY
mkdir -p "$KEY_DIR"
# A wheel cached before keys existed was always a CPU build (FORCE_CUDA=0) for the pinned
# torch: adopt it for a CPU plan only; a GPU machine builds its own.
LEGACY=$(ls "$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl 2>/dev/null | head -1 || true)
if [[ -n $LEGACY && $MMCV_DEVICE == cpu && -z $(ls "$KEY_DIR"/*.whl 2>/dev/null) ]]; then
    say "moving the unkeyed CPU wheel $LEGACY to $KEY_DIR/"
    mv "$LEGACY" "$KEY_DIR"/
fi
MMCV_WHEEL=$(ls "$KEY_DIR"/mmcv-$MMCV_VERSION-*.whl 2>/dev/null | head -1 || true)
if [[ -z $MMCV_WHEEL ]]; then
    if [[ $MMCV_DEVICE == cuda ]]; then
        say "building mmcv $MMCV_VERSION with CPU and CUDA ops for TORCH_CUDA_ARCH_LIST=$MMCV_ARCH_LIST," \
            "CUDA_HOME=$MMCV_CUDA_HOME (an hour or more on few cores; done once, cached in $KEY_DIR)"
    else
        say "building mmcv $MMCV_VERSION with CPU ops from source (about 25 minutes on 2 cores;" \
            "done once, cached in $KEY_DIR)"
    fi
    command -v g++ >/dev/null || die "g++ not found: apt-get install build-essential"
    "${PIPI[@]}" -q opencv-python pyyaml yapf addict packaging mmengine
    BUILD=$(mktemp -d)
    quiet_pip "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation -d "$BUILD" mmcv==$MMCV_VERSION
    tar -xzf "$BUILD"/mmcv-$MMCV_VERSION.tar.gz -C "$BUILD"
    say "patching mmcv setup.py: -std=c++1x -> -std=c++20 (torch 2.14 headers need C++20)"
    sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$BUILD"/mmcv-$MMCV_VERSION/setup.py
    grep -q -- '-std=c++20' "$BUILD"/mmcv-$MMCV_VERSION/setup.py || die "mmcv setup.py patch did not apply"
    BUILD_ENV=(MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} FORCE_CUDA=0)
    if [[ $MMCV_DEVICE == cuda ]]; then
        BUILD_ENV=(MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} FORCE_CUDA=1
                   CUDA_HOME="$MMCV_CUDA_HOME" TORCH_CUDA_ARCH_LIST="$MMCV_ARCH_LIST"
                   PATH="$MMCV_CUDA_HOME/bin:$PATH")
        # cuBLAS/cuSPARSE headers that ATen's CUDA headers include, from torch's own CUDA wheels
        [[ -n $MMCV_CPATH ]] && BUILD_ENV+=(CPATH="$MMCV_CPATH${CPATH:+:$CPATH}")
        # a toolkit from wheels has libcudart.so.N but no libcudart.so for the linker
        CUDART=$(ls "$MMCV_CUDA_HOME"/lib64/libcudart.so "$MMCV_CUDA_HOME"/lib/libcudart.so 2>/dev/null | head -1 || true)
        if [[ -z $CUDART ]]; then
            CUDART_N=$(ls "$MMCV_CUDA_HOME"/lib*/libcudart.so.* 2>/dev/null | head -1 || true)
            [[ -n $CUDART_N ]] || die "no libcudart in $MMCV_CUDA_HOME/lib or lib64: not a whole CUDA toolkit"
            mkdir -p "$BUILD"/lib && ln -s "$CUDART_N" "$BUILD"/lib/libcudart.so
            BUILD_ENV+=(LIBRARY_PATH="$BUILD/lib${LIBRARY_PATH:+:$LIBRARY_PATH}")
        fi
    fi
    (cd "$BUILD"/mmcv-$MMCV_VERSION && env "${BUILD_ENV[@]}" \
        "$VENV/bin/python" -m pip wheel -v --no-build-isolation --no-deps -w "$KEY_DIR" . \
        > "$BUILD"/build.log 2>&1) || {
        tail -30 "$BUILD"/build.log >&2
        die "mmcv build failed (full log: $BUILD/build.log). Needs g++ >= 10 and the pinned torch in .venv" \
            "(and for CUDA the toolkit above: docs/gpu.md)."
    }
    MMCV_WHEEL=$(ls "$KEY_DIR"/mmcv-$MMCV_VERSION-*.whl | head -1)
    rm -rf "$BUILD"
fi
say "mmcv from $MMCV_WHEEL"
"${PIPI[@]}" -q "$MMCV_WHEEL"
# the same version from another cached wheel (CPU before, CUDA now) counts as installed: replace it
"${PIPI[@]}" -q --force-reinstall --no-deps "$MMCV_WHEEL"

say "lsdense[all,dev,export] (editable) with mmdet, mmsegmentation, ultralytics, timm and the export runtimes"
"${PIPI[@]}" -q -e ".[all,dev,export]"

"$VENV/bin/python" scripts/mmcv_build.py check "$MMCV_DEVICE" \
    || die "mmcv's ops do not run on $MMCV_DEVICE: remove $KEY_DIR to rebuild the wheel"
"$VENV/bin/python" - <<'PY' || die "installed stack failed its import check"
import torch, torchvision, timm, mmcv, mmdet, mmseg, ultralytics
import cloudpickle  # Ultralytics' multi-GPU launcher
import onnxruntime, openvino, ncnn, pnnx, coremltools  # [export]: docs/deploy.md
from mmcv.ops import nms, RoIAlign  # compiled ops must be present
import lsdense
print(f"[install] ok: torch {torch.__version__}, timm {timm.__version__}, mmcv {mmcv.__version__}, "
      f"mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, ultralytics {ultralytics.__version__}")
PY
say "timm's own model tests (tests/test_timm_suite.py) from timm's sdist on PyPI"
"$VENV/bin/python" scripts/fetch_timm_tests.py || die "could not fetch timm's test file (above)"
echo "$HASH $MMCV_KEY" > "$STAMP"
