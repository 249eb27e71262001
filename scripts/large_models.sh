#!/usr/bin/env bash
# Large T5s on this machine's CPU: writes random-weight checkpoints of the published shapes
# (genner_write_checkpoint; no weights can be downloaded here), then runs bench_large on each
# case of the README's "Large models" table — load, training steps on real CoNLL-2003 sentences,
# one decoded batch — printing one JSON line per case (peak RSS, times, the memory plan).
# Needs about 40 GB of free disk in WORK-DIR (t5-large fp32 3 GB, t5-3b fp32 11 GB, t5-11b
# bf16 23 GB) and takes about an hour on a 2-core machine.
# Usage: scripts/large_models.sh [build-dir] [work-dir] [case...]   (default: build /tmp/genner-large)
# cases: large-full 3b-fp32 3b-bf16 11b-int8
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
work="${2:-/tmp/genner-large}"
shift $(( $# > 2 ? 2 : $# ))
cases=("$@")
((${#cases[@]})) || cases=(large-full 3b-fp32 3b-bf16 11b-int8)
spiece=../shared/models/t5-spiece/spiece.model
data=../shared/data/conll2003/train.txt
write() {  # preset dtype
  [ -f "$work/$1/config.json" ] || "$build/bench/genner_write_checkpoint" "$work/$1" --preset "$1" --dtype "$2" \
    --max_shard_size 5GB --spiece "$spiece"
}
export OMP_WAIT_POLICY=PASSIVE
for c in "${cases[@]}"; do
  case "$c" in
    large-full) write t5-large fp32
      "$build/bench/bench_large" --experiment full-large --model "$work/t5-large" --batch 8 --steps 3 --data "$data" ;;
    3b-fp32) write t5-3b fp32
      "$build/bench/bench_large" --experiment adapters-3b --model "$work/t5-3b" --batch 8 --steps 3 --data "$data" ;;
    3b-bf16) write t5-3b fp32
      "$build/bench/bench_large" --experiment adapters-3b --model "$work/t5-3b" --frozen_precision bf16 --batch 8 \
        --steps 3 --data "$data" ;;
    11b-int8) write t5-11b bf16
      "$build/bench/bench_large" --experiment adapters-11b --model "$work/t5-11b" --frozen_precision int8 \
        --checkpointing true --batch 2 --steps 1 --decode 1 --data "$data" ;;
    *) echo "large_models: unknown case '$c' (large-full 3b-fp32 3b-bf16 11b-int8)" >&2; exit 2 ;;
  esac
done
