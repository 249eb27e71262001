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
run="--seed 7 --target_type span --constrained false"
"$flat" train $tiny $run --output_dir "$work/a" >"$work/a.txt" 2>&1 || { cat "$work/a.txt"; fail "training run a"; }
"$flat" train $tiny $run --output_dir "$work/b" >/dev/null 2>&1
cmp "$work/a/best.safetensors" "$work/b/best.safetensors" || fail "two runs with --seed 7 differ"
echo "run_folder: same seed, byte-identical best.safetensors"

# 2. Resuming with a setting that shapes training changed is refused, naming it.
expect_error "epochs 2 (checkpoint: 1)" "$flat" train $tiny $run --resume true --epochs 2 --output_dir "$work/a"
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
echo "run_folder: all checks passed"
