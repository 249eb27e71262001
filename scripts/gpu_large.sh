#!/usr/bin/env bash
# Large models on one GPU: the t5-3b adapters step with a bf16-stored frozen backbone, and the
# t5-11b adapters step (bf16-stored backbone, activation checkpointing), each loading a random
# checkpoint of the published shape, training 3 steps on real CoNLL-2003 sentences and decoding
# one batch; reports peak GPU memory (the caching allocator's), load, step and decode times
# (bench/bench_large.cpp). Needs a CUDA build of LibTorch (Debian's libtorch-dev is CPU-only):
# point Torch_DIR at its share/cmake/Torch folder, e.g.
# Torch_DIR=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')/Torch.
# Usage: Torch_DIR=... scripts/gpu_large.sh [work-dir]   (default: /tmp/genner-large)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-/tmp/genner-large}"
build_dir=build-cuda
: "${Torch_DIR:?set Torch_DIR to a CUDA LibTorch's share/cmake/Torch folder}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$Torch_DIR" -DGENNER_ONEDNN=OFF \
  -DGENNER_BUILD_TESTS=OFF -DGENNER_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build_dir" --target bench_large genner_write_checkpoint -j "$(nproc)"
spiece=../shared/models/t5-spiece/spiece.model
data=../shared/data/conll2003/train.txt
for preset in t5-3b t5-11b; do
  [ -f "$work/$preset/config.json" ] ||
    "$build_dir/bench/genner_write_checkpoint" "$work/$preset" --preset "$preset" --dtype bf16 --spiece "$spiece"
done
"$build_dir/bench/bench_large" --experiment adapters-3b --model "$work/t5-3b" --frozen_precision bf16 \
  --device cuda:0 --batch 8 --steps 3 --data "$data"
"$build_dir/bench/bench_large" --experiment adapters-11b --model "$work/t5-11b" --frozen_precision bf16 \
  --checkpointing true --device cuda:0 --batch 2 --steps 3 --data "$data"
