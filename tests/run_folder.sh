#!/bin/sh
# Driver-level hardening checks (CTest example.run_folder): reproducible seeds, run folders that
# can be trusted and moved, recorded settings reused, bad paths refused with exit status 1.
# Usage: run_folder.sh FLAT_NER TINY_ADAPTERS WORK_DIR CONFIG_DIR
set -eu
flat="$1"; adapters="$2"; work="$3"; configs="$4"
rm -rf "$work"; mkdir -p "$work"
tiny="--sample_size 100 --epochs 1 --scratch_d_model 32 --scratch_d_ff 64 --spm_vocab_size 200 --resume false"
name=run_folder
. "$(dirname "$0")/expect.sh"

# 1. The same seed gives byte-identical weights (initialisation included).
# Span targets and unconstrained decoding: settings that evaluate must take from the run's record.
run="--seed 7 --target_type span --constrained false --contiguous false"
"$flat" train $tiny $run --logging_steps 2 --output_dir "$work/a" >"$work/a.txt" 2>&1 ||
  { cat "$work/a.txt"; fail "training run a"; }
"$flat" train $tiny $run --output_dir "$work/b" >/dev/null 2>&1
cmp "$work/a/best.safetensors" "$work/b/best.safetensors" || fail "two runs with --seed 7 differ"
echo "run_folder: same seed, byte-identical best.safetensors (logging_steps changes no weight)"

# 1b. Logs: a training-loss line every --logging_steps steps, log.csv row for row, a deflated curve.png.
steps=$(jq -s '[.[] | select(.kind == "eval")] | last | .step' "$work/a/log.jsonl")
train_lines=$(jq -s '[.[] | select(.kind == "train")] | length' "$work/a/log.jsonl")
[ "$train_lines" -eq $((steps / 2)) ] || fail "$train_lines training-loss lines for $steps steps at --logging_steps 2"
jq -s -e '[.[] | select(.kind == "train") | .step % 2 == 0 and (.train_loss | type) == "number"] | all' \
  "$work/a/log.jsonl" >/dev/null || fail "training-loss lines off the logging_steps grid or without a loss"
[ "$(head -n 1 "$work/a/log.csv")" = "step,epoch,kind,train_loss,lr,dev.precision,dev.recall,dev.f1,dev_seconds,time" ] ||
  fail "log.csv header: $(head -n 1 "$work/a/log.csv")"
[ $(($(wc -l <"$work/a/log.csv") - 1)) -eq "$(wc -l <"$work/a/log.jsonl")" ] || fail "log.csv and log.jsonl differ in rows"
csv_f1=$(grep ',eval,' "$work/a/log.csv" | tail -n 1 | cut -d, -f8)
jq -s -e --argjson c "$csv_f1" '[.[] | select(.kind == "eval")] | last | .dev.f1 == $c' "$work/a/log.jsonl" \
  >/dev/null || fail "log.csv's last dev F1 '$csv_f1' is not log.jsonl's"
png_bytes=$(wc -c <"$work/a/curve.png")
[ "$png_bytes" -lt 150000 ] || fail "curve.png is $png_bytes bytes: not compressed"
echo "run_folder: $train_lines loss lines in $steps steps, log.csv mirrors log.jsonl, curve.png $png_bytes bytes"

# 2. Resuming with a setting that shapes training changed is refused, naming it.
expect_error "epochs 2 (checkpoint: 1)" "$flat" train $tiny $run --resume true --epochs 2 --output_dir "$work/a"
# ... and extending a finished run says why it cannot continue (the schedule depends on the total).
expect_error "cannot extend this run to max_steps 8 (checkpoint: 0)" "$flat" train $tiny $run --resume true \
  --max_steps 8 --output_dir "$work/a"
grep -q "decays linearly to 0 at the last step" "$work/err.txt" || fail "the refusal to extend a run gives no reason"
expect_error "--learning_rate and --lr are one setting" "$flat" plan $tiny --lr 0.1 --learning_rate 0.2 \
  --output_dir "$work/a"
expect_error "no numbered checkpoints to limit" "$flat" plan $tiny --save_total_limit 2 --output_dir "$work/a"
cmp "$work/a/best.safetensors" "$work/b/best.safetensors" || fail "a refused resume changed the run"

# 3. A moved run folder evaluates on its recorded data with its recorded settings.
mv "$work/a" "$work/moved"
"$flat" evaluate --output_dir "$work/moved" >"$work/eval.txt" 2>&1 || { cat "$work/eval.txt"; fail "evaluate of a moved run"; }
# Same data, targets and decoding as at training: the very same test scores.
[ "$(grep "^test: " "$work/eval.txt")" = "$(grep "^test: " "$work/a.txt")" ] ||
  fail "evaluate of the moved run: '$(grep "^test: " "$work/eval.txt")', training: '$(grep "^test: " "$work/a.txt")'"
echo "run_folder: moved run evaluates on its recorded data and settings"

# 4. Bad paths: exit status 1 with a sentence, never an abort.
touch "$work/file"
expect_error "expected a folder" "$flat" train $tiny --output_dir "$work/file"
expect_error "is a file" "$flat" train $tiny --output_dir "$work/file/run"
expect_error "empty path" "$flat" train $tiny --output_dir ""
expect_error "found the folder" "$flat" predict --output_dir "$work/moved" --input "$work"
expect_error "--predictions: expected a file" "$flat" predict --output_dir "$work/moved" --input "$work/file" --predictions "$work"
printf 'ok line\nbad \377 byte\n' > "$work/bad.txt"
expect_error "bad.txt:2: expected UTF-8" "$flat" predict --output_dir "$work/moved" --input "$work/bad.txt"
expect_error "divisor of scratch_d_model" "$flat" train $tiny --scratch_heads 3 --output_dir "$work/c"

# A run record whose model vocabulary is smaller than its tokenizer: named, before any weight loads.
cp -r "$work/moved" "$work/vocab"
sed -i 's/"vocab_size": [0-9]*/"vocab_size": 50/' "$work/vocab/run.json"
expect_error "run.json: expected SHA-256" "$flat" evaluate --output_dir "$work/vocab"
# The same record with its manifest refreshed: the check behind it still names both sizes.
sha=$(sha256sum "$work/vocab/run.json" | cut -d' ' -f1)
sed -i "s/\"run.json\": \"[0-9a-f]*\"/\"run.json\": \"$sha\"/" "$work/vocab/manifest.json"
expect_error "holds 50; use the spiece.model" "$flat" evaluate --output_dir "$work/vocab"
expect_error "holds 50; use the spiece.model" "$flat" predict --output_dir "$work/vocab" --input "$work/file"

# 5. A from-scratch adapter run keeps its random frozen backbone: evaluate scores the trained model.
"$adapters" train --sample_size 100 --epochs 1 --spm_vocab_size 200 --resume false --output_dir "$work/ad" >"$work/ad.txt" 2>&1 ||
  { cat "$work/ad.txt"; fail "adapter run"; }
[ -s "$work/ad/frozen.safetensors" ] || fail "no frozen.safetensors in a from-scratch adapter run"
trained=$(grep "^test: " "$work/ad.txt")
for i in 1 2; do
  again=$("$adapters" evaluate --output_dir "$work/ad" 2>/dev/null | grep "^test: ")
  [ "$again" = "$trained" ] || fail "evaluate gives '$again', training gave '$trained'"
done
# A run belongs to the experiment that trained it: another executable refuses it, naming the trainer.
expect_error "this run was trained by tiny_adapters" "$flat" evaluate --output_dir "$work/ad"
expect_error "this run was trained by tiny_adapters" "$flat" predict --output_dir "$work/ad" --input "$work/file"
# 6. evaluate and predict as tools: training settings refused, --split/--output, formats, batch size.
run_dir="$work/moved"
expect_error "--lr does not apply to evaluate" "$flat" evaluate --output_dir "$run_dir" --lr 0.5
expect_error "--epochs does not apply to predict" "$flat" predict --output_dir "$run_dir" --input "$work/file" --epochs 3
expect_error "not from config files" "$flat" evaluate --output_dir "$run_dir" --config "$configs/conll2003.json"
"$flat" evaluate --output_dir "$run_dir" --split dev --output "$work/metrics.json" >"$work/eval_dev.txt" 2>&1 ||
  { cat "$work/eval_dev.txt"; fail "evaluate --split dev --output"; }
jq -e '.split == "dev" and .scale == "percent" and (.f1 >= 0 and .f1 <= 100) and (.per_type | length) > 0
       and (.rules | test("percent")) and .gold > 0' "$work/metrics.json" >/dev/null ||
  { cat "$work/metrics.json"; fail "metrics.json lacks the split, the scale, per-type figures or counts"; }
# the printed F1 and the file's agree (one scale)
printed=$(sed -n 's/^dev : .* F1 \([0-9.]*\) .*/\1/p' "$work/eval_dev.txt")
[ "$printed" = "$(/usr/bin/printf '%.2f' "$(jq .f1 "$work/metrics.json")")" ] ||
  fail "printed dev F1 '$printed' differs from metrics.json's $(jq .f1 "$work/metrics.json")"
[ -s "$run_dir/dev_predictions.conll" ] || fail "evaluate --split dev wrote no dev_predictions.conll"
expect_error "--split: expected one of 'dev' 'test'" "$flat" evaluate --output_dir "$run_dir" --split train
head -n 5 "$run_dir/sample_data/raw.txt" >"$work/raw5.txt"
"$flat" predict --output_dir "$run_dir" --input "$work/raw5.txt" --batch_size 2 >"$work/p2.jsonl" 2>"$work/p2.err" ||
  { cat "$work/p2.err"; fail "predict --batch_size 2"; }
grep -q "in batches of up to 2 windows" "$work/p2.err" || { cat "$work/p2.err"; fail "predict ignored --batch_size 2"; }
"$flat" predict --output_dir "$run_dir" --input "$work/raw5.txt" --batch_size 64 >"$work/p64.jsonl" 2>/dev/null
cmp -s "$work/p2.jsonl" "$work/p64.jsonl" || fail "predictions depend on --batch_size"
"$flat" predict --output_dir "$run_dir" --input "$work/raw5.txt" --predictions "$work/out.ann" 2>/dev/null
! grep -q '^{' "$work/out.ann" || fail "--predictions out.ann wrote JSON lines"
[ ! -s "$work/out.ann" ] || grep -q '^T1	' "$work/out.ann" || fail "--predictions out.ann is not brat standoff"
expect_error "disagrees with --predictions" "$flat" predict --output_dir "$run_dir" --input "$work/raw5.txt" \
  --format jsonl --predictions "$work/x.ann"
[ ! -e "$work/x.ann" ] || fail "a refused predict left $work/x.ann"
"$flat" predict --output_dir "$run_dir" --input "$work/raw5.txt" --predictions "$work/page.html" 2>/dev/null
grep -q '^<!DOCTYPE html>' "$work/page.html" && [ "$(grep -c '<p class="line">' "$work/page.html")" -eq 5 ] ||
  fail "--predictions page.html is not a page of 5 paragraphs"
"$flat" predict --output_dir "$run_dir" --input "$work/raw5.txt" --pretokenized false --split_sentences false \
  >"$work/pf.jsonl" 2>/dev/null || fail "predict switches with an explicit false"
cmp -s "$work/pf.jsonl" "$work/p64.jsonl" || fail "--pretokenized false --split_sentences false changed the output"
expect_error "--pretokenized: expected true or false" "$flat" predict --output_dir "$run_dir" --input "$work/raw5.txt" \
  --pretokenized=maybe
"$flat" predict --output_dir "$run_dir" --input "$work/raw5.txt" --threshold 0.9 >"$work/t.jsonl" 2>/dev/null
jq -e '[.entities[] | .score | exp] | all(. >= 0.9)' "$work/t.jsonl" >/dev/null || fail "--threshold 0.9 kept a less probable entity"
echo "run_folder: evaluate --split/--output, predict --batch_size/--threshold/formats/switches"

# 7. Missing data and local model folders say what they are.
expect_error "no such folder: the data set is not there" env GENNER_DATA="$work/nowhere" "$flat" plan --dataset conll2003 \
  --output_dir "$work/p"
mkdir -p "$work/cwd/tmodel"
(cd "$work/cwd" && expect_error "tmodel/config.json is missing" "$flat" plan --model tmodel --output_dir "$work/p")
"$flat" --help >"$work/help.txt"
[ "$(grep -c '^usage:' "$work/help.txt")" -eq 1 ] || fail "--help prints usage more than once"
grep -q 'GENNER_DATA' "$work/help.txt" || fail "--help does not mention GENNER_DATA"
grep -A1 -- '^  --epochs ' "$work/help.txt" | grep -q 'default 20' || fail "--help shows another epochs default than 20"
grep -A1 -- '^  --model ' "$work/help.txt" | grep -q 'default "scratch"' || fail "--help shows another model default"
grep -q 'synthetic' "$work/help.txt" || fail "--help does not say the sample model only fits synthetic data"
echo "run_folder: missing data, local model folders and --help defaults"

echo "run_folder: all checks passed"
