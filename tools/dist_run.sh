#!/usr/bin/env bash
# torchrun one of the tools on GPUS processes per node, from the repository root:
#   tools/dist_run.sh GPUS SCRIPT [SCRIPT arguments]   (what dist_train.sh / dist_test.sh call)
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as in mmdet's scripts; PYTHON picks the interpreter.
set -euo pipefail
GPUS=$1
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
cd "$(dirname "$0")/.."
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "${@:2}"
