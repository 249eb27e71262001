#!/bin/sh
# A static-backbone PEFT executable end to end (CTest example.tiny_adapters): tiny_adapters is
# compiled for adapters on genner::t5::T5Tiny (genner/app/experiments.hpp). It trains from random
# weights of the preset's shape, then from a Hugging Face checkpoint of that shape written here and
# found through GENNER_MODELS; evaluates and predicts; and refuses what contradicts it: another
# PEFT mode, a checkpoint of another shape, a from-scratch shape, a model that is not there.
# Usage: static_experiment.sh TINY_ADAPTERS MAKE_CHECKPOINT WORK_DIR
set -eu
exe="$1"; make_checkpoint="$2"; work="$3"
rm -rf "$work"; mkdir -p "$work"
name=static_experiment
. "$(dirname "$0")/expect.sh"
run="--sample_size 150 --epochs 1 --resume false"
tiny="$run --spm_vocab_size 200"

# 1. --help, the start-up line and run.json name the compiled experiment.
"$exe" --help | grep -q "Experiment tiny_adapters (flat NER), compiled for" || fail "--help does not name the experiment"
"$exe" train $tiny --output_dir "$work/scratch" >"$work/scratch.txt" 2>&1 || { cat "$work/scratch.txt"; fail "from-scratch run"; }
grep -q "experiment: static backbone d_model=32 d_ff=64 d_kv=8 heads=4 layers=2/2 ff=gated-gelu" "$work/scratch.txt" ||
  fail "the start-up line does not name the static backbone"
grep -q '"program": "tiny_adapters"' "$work/scratch/run.json" || fail "run.json does not name the program"
jq -e '.experiment.adapters != null and .experiment.trainable.backbone == false' "$work/scratch/run.json" >/dev/null ||
  fail "run.json does not record the compiled experiment (adapters, frozen backbone)"
! jq -e '.settings | has("peft")' "$work/scratch/run.json" >/dev/null ||
  fail "run.json records the structure among the settings, beside the experiment"
[ -s "$work/scratch/frozen.safetensors" ] || fail "a from-scratch adapter run must keep its random frozen backbone"
echo "static_experiment: trained from random weights of the preset's shape"

# 2. A checkpoint of the preset's shape under a models root: --model NAME finds it there.
pieces=$(sed -n 's/.*"vocab_size": *\([0-9]*\).*/\1/p' "$work/scratch/run.json" | head -1)
"$make_checkpoint" "$work/models/tiny-t5" "$pieces"
cp "$work/scratch/spiece.model" "$work/models/tiny-t5/spiece.model"
GENNER_MODELS="$work/models" "$exe" train $run --model tiny-t5 --output_dir "$work/run" >"$work/run.txt" 2>&1 ||
  { cat "$work/run.txt"; fail "run from the checkpoint"; }
grep -q "\"pretrained\": \".*models/tiny-t5\"" "$work/run/run.json" || fail "run.json does not record the checkpoint folder"
[ ! -e "$work/run/frozen.safetensors" ] || fail "a run from a checkpoint must not copy its frozen weights"
trained=$(grep "^test: " "$work/run.txt")
again=$("$exe" evaluate --output_dir "$work/run" 2>/dev/null | grep "^test: ")
[ "$again" = "$trained" ] || fail "evaluate gives '$again', training gave '$trained'"
printf 'John Smith lives in Paris .\n' | "$exe" predict --output_dir "$work/run" --input - >"$work/pred.jsonl"
[ "$(wc -l <"$work/pred.jsonl")" -eq 1 ] || fail "predict wrote no line"
echo "static_experiment: trained from a checkpoint of its shape, evaluated and predicted"

# 3. Refusals: structure, shape, missing model, from-scratch shape, another executable's run.
expect_error "peft \"full\" contradicts the compiled experiment" "$exe" plan $tiny --peft full --output_dir "$work/x"
grep -q "conll2003_t5_base" "$work/err.txt" || fail "the refusal does not name an executable compiled with peft full"
expect_error "adapter_size 8 contradicts" "$exe" plan $tiny --adapter_size 8 --output_dir "$work/x"
"$make_checkpoint" "$work/models/wide" "$pieces" 64
cp "$work/scratch/spiece.model" "$work/models/wide/spiece.model"
expect_error "is compiled for the static backbone d_model=32" "$exe" plan $run --model "$work/models/wide" --output_dir "$work/x"
expect_error "no model folder at $work/models/t5-base" env GENNER_MODELS="$work/models" "$exe" plan $run --model t5-base --output_dir "$work/x"
expect_error "scratch_d_model 64 contradicts the compiled experiment" "$exe" plan $tiny --scratch_d_model 64 --output_dir "$work/x"
expect_error "applies only with --model scratch" env GENNER_MODELS="$work/models" "$exe" plan $run --model tiny-t5 --spm_vocab_size 300 --output_dir "$work/x"
echo "static_experiment: contradictions refused"
