#!/bin/sh
# Every setting of the option table changes what a run does, or is refused with a sentence naming
# it (CTest example.options). `plan` resolves everything train would use (data, tokenizer, model,
# optimiser, decoding, parallel layout) from the objects a run is built from and prints it; each
# option is set to a value that differs from the base run and the plan must differ, or the
# program must exit with status 1 and name the option. The option list comes from --help itself:
# a new option without a case here fails the test.
# Usage: options.sh FLAT_NER WORK_DIR
set -eu
exe="$1"; work="$2"
rm -rf "$work"; mkdir -p "$work/data"
name=options
. "$(dirname "$0")/expect.sh"
cat > "$work/base.json" <<JSON
{"dataset": "sample", "model": "scratch", "constrained": true, "contiguous": true,
 "sample_size": 100, "epochs": 1, "scratch_d_model": 32, "scratch_d_ff": 64, "spm_vocab_size": 200,
 "resume": false, "output_dir": "$work/run"}
JSON
# plan KEY VALUE -> the plan's JSON in $work/plan.json (all of standard output); exit status of the program
mkdir -p "$work/tmp"
plan() {
  rm -rf "$work/run" "$work/other"
  set +e
  TMPDIR="$work/tmp" GENNER_DATA="$work/data" "$exe" plan --config "$work/base.json" "$@" >"$work/out.txt" 2>"$work/err.txt"
  rc=$?
  set -e
  cp "$work/out.txt" "$work/plan.json"
  return $rc
}
plan || { cat "$work/err.txt"; fail "the base plan"; }
cp "$work/plan.json" "$work/base_plan.json"
plan || fail "the base plan, again"
cmp -s "$work/plan.json" "$work/base_plan.json" || fail "two plans of the same settings differ: the comparison would prove nothing"
[ -s "$work/base_plan.json" ] || fail "empty plan"
# The plan is JSON and nothing else on standard output (| jq works), and it creates nothing: no
# run folder, no lock, no tokenizer, no temporary folder left behind.
jq -e .program "$work/plan.json" >/dev/null || fail "standard output of plan is not one JSON object"
[ ! -e "$work/run" ] || fail "plan created the run folder $work/run"
[ -z "$(ls -A "$work/tmp")" ] || fail "plan left $(ls "$work/tmp") in its temporary folder"
grep -q "sentences: train" "$work/err.txt" || fail "plan's notes are not on standard error"
# Steps: batch_size sentences per step, so an epoch of N sentences takes ceil(N / batch_size) steps.
n=$(jq '.data.sentences[0]' "$work/plan.json"); bs=$(jq '.steps.sentences_per_step' "$work/plan.json")
per_epoch=$(jq '.steps.per_epoch' "$work/plan.json"); total=$(jq '.steps.total' "$work/plan.json")
[ "$per_epoch" -eq $(( (n + bs - 1) / bs )) ] || fail "steps per epoch $per_epoch for $n sentences in batches of $bs"
[ "$total" -eq "$per_epoch" ] || fail "total steps $total for one epoch of $per_epoch"
jq -e '.tokenizer.pieces == null and .tokenizer.train_would_train.vocab_size_at_most == 200' "$work/plan.json" \
  >/dev/null || fail "plan from scratch does not say which tokenizer train would train"
echo "options: plan prints only JSON, creates nothing, $n sentences / $bs per step = $per_epoch steps per epoch"
# A second data set for --dataset / --data_dir: a few CoNLL sentences as all three splits.
mkdir -p "$work/data/mini"
for s in train dev test; do
  printf 'John B-PER\nSmith I-PER\nlives O\nin O\nParis B-LOC\n. O\n\nAcme B-ORG\nhired O\nan O\nItalian B-MISC\n. O\n\n' \
    >"$work/data/mini/$s.txt"
done

value_for() {
  case "$1" in
    dataset) echo mini ;;                data_dir) echo "$work/data/mini" ;;
    family) echo nested ;;
    sample_size) echo 120 ;;             target_type) echo span ;;
    train_on_dev) echo true ;;           max_words) echo 8 ;;
    dev_from_train) echo 0.2 ;;          model) echo ./no_such_model ;;
    mlp_dropout) echo 0.5 ;;             scratch_d_model) echo 64 ;;
    scratch_d_ff) echo 128 ;;            scratch_heads) echo 2 ;;
    scratch_layers) echo 1 ;;            scratch_dropout) echo 0.2 ;;
    spm_vocab_size) echo 300 ;;          max_len) echo 20 ;;
    max_len_a) echo 1.0 ;;               beams) echo 2 ;;
    length_penalty) echo 0.5 ;;          constrained) echo false ;;
    contiguous) echo false ;;            metric) echo word ;;
    lr) echo 0.001 ;;                    batch_size) echo 8 ;;
    epochs) echo 2 ;;                    max_steps) echo 5 ;;
    patience) echo 2 ;;                  warmup) echo 0.2 ;;
    weight_decay) echo 0.1 ;;            clip_value) echo 0.5 ;;
    clip_norm) echo 0.5 ;;               truncate_prob) echo 0.3 ;;
    precision) echo bf16 ;;
    seed) echo 7 ;;                      output_dir) echo "$work/other" ;;
    eval_every) echo 3 ;;                resume) echo true ;;
    description) echo "another run" ;;   nproc) echo 2 ;;
    accumulate) echo 2 ;;                backend) echo nccl ;;
    dist_timeout) echo 60 ;;           frozen_precision) echo bf16 ;;
    gradient_checkpointing) echo true ;; memory_budget) echo 1GB ;;
    max_train_samples) echo 40 ;;        max_eval_samples) echo 5 ;;
    logging_steps) echo 2 ;;             threads) echo 1 ;;
    *) return 1 ;;
  esac
}

keys=$("$exe" --help | sed -n 's/^  --\([a-z_0-9]*\) \(INT\|NUM\|BOOL\|STR\).*/\1/p')
[ -n "$keys" ] || fail "no options in --help"
changed=0; refused=0
for key in $keys; do
  value=$(value_for "$key") || fail "option --$key has no case in tests/options.sh"
  if plan "--$key" "$value"; then
    if cmp -s "$work/plan.json" "$work/base_plan.json"; then
      fail "--$key $value: the plan is the same as without it (the setting changes nothing)"
    fi
    changed=$((changed + 1)); echo "options: --$key $value: changes the plan"
  else
    rc=$?
    [ "$rc" -eq 1 ] || { cat "$work/err.txt"; fail "--$key $value: exit status $rc, expected 0 or 1"; }
    grep -q -- "$key" "$work/err.txt" || { cat "$work/err.txt"; fail "--$key $value: refused without naming $key"; }
    refused=$((refused + 1)); echo "options: --$key $value: refused: $(head -c 160 "$work/err.txt")"
  fi
done
# --threads N: OpenBLAS gets N threads; fp32 keeps one OpenMP thread (bf16 and int8 would get N).
plan --threads 1 || { cat "$work/err.txt"; fail "--threads 1"; }
jq -e '.threads.openmp == 1 and .threads.openblas == 1 and .threads.from == "--threads 1"' "$work/plan.json" \
  >/dev/null || fail "--threads 1: the plan says $(jq -c .threads "$work/plan.json")"
# What flat_ner is compiled for is not a setting (--help lists none of it); naming it is checked:
# the compiled values themselves are accepted, a contradicting or impossible value refused.
! "$exe" --help | grep -q -- "--peft \|--adapter_size \|--encoder_mlp " || fail "--help lists the structure as settings"
plan --peft full --encoder_mlp true --avg_feature true --adapter_size 0 --prompt_length 0 ||
  { cat "$work/err.txt"; fail "the compiled experiment's own structure values were refused"; }
for bad in "--peft lora" "--adapter_size 16" "--encoder_mlp false" "--avg_feature false" "--prompt_length 5"; do
  if plan $bad; then fail "$bad was accepted by an executable compiled for full fine-tuning"; fi
  grep -q "contradicts the compiled experiment" "$work/err.txt" || fail "$bad: $(cat "$work/err.txt")"
done
if plan --peft banana; then fail "--peft banana was accepted"; fi
grep -q "peft: expected one of full" "$work/err.txt" || fail "--peft banana: $(cat "$work/err.txt")"
printf '{"adapter_size": 16}\n' >"$work/structure.json"
if plan --config "$work/structure.json"; then fail "adapter_size in a config file was accepted"; fi
grep -q "structure.json: adapter_size 16 contradicts" "$work/err.txt" || fail "config adapter_size: $(cat "$work/err.txt")"
echo "options: all $((changed + refused)) options: $changed change the run, $refused refused with a sentence naming them"
