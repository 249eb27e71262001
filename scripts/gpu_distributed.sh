#!/usr/bin/env bash
# The CUDA path of data-parallel training, measured: one rank through a NCCL process group against
# one process without c10d (same model, same batch, on cuda:0), from bench/bench_distributed.cpp.
# Needs a CUDA build of LibTorch with NCCL (Debian's libtorch-dev is CPU-only): point Torch_DIR at
# its share/cmake/Torch folder, e.g. Torch_DIR=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')/Torch.
# Usage: Torch_DIR=... scripts/gpu_distributed.sh [build-dir]   (default: build-cuda)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build-cuda}"
: "${Torch_DIR:?set Torch_DIR to a CUDA LibTorch's share/cmake/Torch folder}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$Torch_DIR" -DGENNER_ONEDNN=OFF \
  -DGENNER_BUILD_TESTS=OFF -DGENNER_BUILD_EXAMPLES=OFF
cmake --build "$build_dir" --target bench_distributed -j "$(nproc)"
export OMP_WAIT_POLICY=PASSIVE
# ranks:1/c10d:0 is one process without c10d; ranks:1/c10d:1 the same step through NCCL.
GENNER_BENCH_CUDA=1 "$build_dir/bench/bench_distributed" --benchmark_filter='BM_DataParallelStep/ranks:1/' \
  --benchmark_counters_tabular=true
if [ "$(nvidia-smi -L 2>/dev/null | wc -l)" -ge 2 ]; then
  GENNER_BENCH_CUDA=1 "$build_dir/bench/bench_distributed" --benchmark_filter='BM_DataParallelStep/ranks:2/' \
    --benchmark_counters_tabular=true
fi
