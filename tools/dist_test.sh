#!/usr/bin/env bash
# Multi-GPU testing with torchrun: tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py options]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as in mmdet's script (see dist_run.sh).
set -euo pipefail
exec bash "$(dirname "$0")/dist_run.sh" "$3" tools/test.py "$1" "$2" --launcher pytorch "${@:4}"
