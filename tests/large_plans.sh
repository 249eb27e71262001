#!/bin/sh
# The published executables of the large backbones, compiled here, and their plans (CTest
# example.large_plans): conll2003_t5_large (full fine-tuning of t5-large), conll2003_t5_3b_adapters
# and conll2003_t5_11b_adapters (adapters 768 at the published blocks). From random weights of the
# static shape on a small sample: t5-large's plan counts every weight, its gradient and AdamW's
# two moments in fp32; t5-3b's, its frozen projections in bf16 and only the adapters' training
# state; t5-11b's fp32 random weights alone exceed a 40 GB budget, and the plan refuses it before
# allocating, naming the way that fits (a checkpoint loaded into bf16 or int8 storage).
# Usage: large_plans.sh EXAMPLES_DIR WORK_DIR
set -eu
bin="$1"; work="$2"
rm -rf "$work"; mkdir -p "$work"
name=large_plans
. "$(dirname "$0")/expect.sh"
small="--model scratch --dataset sample --sample_size 100 --batch_size 8 --spm_vocab_size 300 --output_dir $work/run"

"$bin/conll2003_t5_large" --help | grep -q "static backbone d_model=1024 d_ff=4096 d_kv=64 heads=16 layers=24/24" ||
  fail "conll2003_t5_large --help does not name t5-large's shape"
"$bin/conll2003_t5_large" plan $small >"$work/large.json" 2>"$work/err.txt" || { cat "$work/err.txt"; fail "t5-large plan"; }
jq -e '.model.trainable_parameters > 700000000 and .model.config.num_layers == 24 and .model.config.d_model == 1024' \
  "$work/large.json" >/dev/null || fail "t5-large plan: $(jq -c '.model | del(.config)' "$work/large.json")"
# Full fine-tuning: every weight trains, in fp32, with its gradient and two AdamW moments.
jq -e '.model.trainable_parameters as $n | .memory.devices[0] |
       .weights.fp32 == 4 * $n and .gradients == 4 * $n and .optimizer == 8 * $n and .activations > 0' \
  "$work/large.json" >/dev/null || fail "t5-large plan's memory: $(jq -c .memory "$work/large.json")"
echo "large_plans: t5-large full fine-tuning: $(jq -r .memory.total_human "$work/large.json") for batches of 8"

"$bin/conll2003_t5_3b_adapters" plan $small --frozen_precision bf16 >"$work/3b.json" 2>"$work/err.txt" ||
  { cat "$work/err.txt"; fail "t5-3b adapters plan"; }
jq -e '.model.config.d_ff == 16384 and .model.config.num_heads == 32 and .experiment.adapters.size == 768' \
  "$work/3b.json" >/dev/null || fail "t5-3b plan: $(jq -c '.experiment.adapters' "$work/3b.json")"
# The frozen projections (2.8 billion weights) in bf16; trainable tensors, gradients and state in fp32.
jq -e '.model.trainable_parameters as $n | .memory.devices[0] |
       .weights.bf16 > 5000000000 and .gradients == 4 * $n and .optimizer == 8 * $n and $n < 100000000' \
  "$work/3b.json" >/dev/null || fail "t5-3b bf16-stored plan's memory: $(jq -c .memory "$work/3b.json")"
echo "large_plans: t5-3b adapters, bf16-stored: $(jq -r .memory.total_human "$work/3b.json")"

expect_error "static backbone d_model=1024 d_ff=65536" \
  "$bin/conll2003_t5_11b_adapters" plan $small --memory_budget 40GB
grep -q "of fp32 weights alone, more than the memory budget .*memory_budget" "$work/err.txt" &&
  grep -q -- "--frozen_precision bf16 or int8" "$work/err.txt" ||
  { cat "$work/err.txt"; fail "the t5-11b refusal does not name the budget and the way that fits"; }
echo "large_plans: t5-11b from random weights refused before allocating: $(grep -m1 "error:" "$work/err.txt" | cut -c1-200)"
