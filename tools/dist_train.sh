#!/usr/bin/env bash
# Multi-GPU training with torchrun: tools/dist_train.sh CONFIG GPUS [tools/train.py options]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as in mmdet's script.
set -euo pipefail
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
cd "$(dirname "$0")/.."
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    tools/train.py "$CONFIG" --launcher pytorch "${@:3}"
