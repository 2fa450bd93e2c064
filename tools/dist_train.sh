#!/usr/bin/env bash
# Multi-GPU training with torchrun: tools/dist_train.sh CONFIG GPUS [tools/train.py options]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as in mmdet's script (see dist_run.sh).
set -euo pipefail
exec bash "$(dirname "$0")/dist_run.sh" "$2" tools/train.py "$1" --launcher pytorch "${@:3}"
