#!/bin/sh
# The tuning-mode programs (CTest example.modes): ner_adapters, ner_lora, ner_prompt,
# ner_adapters_prompt and ner_embeddings are compiled for one PEFT mode each on a backbone of any
# shape and serve data of any family (--family). Each shows its alias's values in --help and its
# plan, trains on the sample data (a family per program), evaluates and predicts; ner_lora also
# starts from a Hugging Face checkpoint (--model) and exports its run as a PEFT LoRA folder and as a
# Hugging Face folder with the factors merged, which flat_ner then plans from; the family programs
# refuse another family; export refuses what would lose trained tensors.
# Usage: modes.sh EXAMPLES_DIR MAKE_CHECKPOINT WORK_DIR
set -eu
bin="$1"; make_checkpoint="$2"; work="$3"
rm -rf "$work"; mkdir -p "$work"
name=modes
. "$(dirname "$0")/expect.sh"
run="--sample_size 150 --epochs 1 --resume false"
tiny="$run --scratch_d_model 32 --scratch_d_ff 64 --spm_vocab_size 200"

# 1. --help names the mode and its values; the plan records the compiled experiment and the family.
help() { "$bin/$1" --help >"$work/help.txt" || fail "$1 --help"; grep -q -- "$2" "$work/help.txt" ||
  { grep "compiled for" -A1 "$work/help.txt"; fail "$1 --help does not say '$2'"; }; }
help ner_adapters "adapters of the published size (192 up to d_model 768, 768 beyond)"
help ner_lora "LoRA rank 8, alpha 16 on q v"
help ner_prompt "soft prompt 100"
help ner_adapters_prompt "(peft adapters+prompt)"
help ner_embeddings "trains embeddings + added modules"
grep -q "Experiment ner_embeddings (NER of the family --family names: flat, nested or discontinuous; now flat)" \
  "$work/help.txt" || fail "--help of a tuning-mode program does not say that --family chooses the family"
for mode in adapters lora prompt adapters_prompt embeddings; do
  "$bin/ner_$mode" plan $tiny --family nested --output_dir "$work/plan" >"$work/plan.json" 2>"$work/err.txt" || { cat "$work/err.txt"; fail "ner_$mode plan"; }
  jq -e '.data.family == "nested"' "$work/plan.json" >/dev/null || fail "ner_$mode plan: family $(jq .data.family "$work/plan.json")"
  grep -q "own nested sample data" "$work/plan.json" ||
    fail "ner_$mode plan --family nested: not the built-in settings of the nested sample: $(jq -c .record "$work/plan.json")"
  jq -e '.model.trainable_parameters > 0 and .program == "ner_'$mode'"' "$work/plan.json" >/dev/null ||
    fail "ner_$mode plan: $(jq -c .model "$work/plan.json")"
done
echo "modes: --help and plan of the five programs name their mode and the family chosen"

# 2. Each trains, evaluates and predicts; families differ between programs.
train() {  # program family
  "$bin/$1" train $tiny --family "$2" --output_dir "$work/$1" \
    >"$work/$1.txt" 2>&1 || { tail -20 "$work/$1.txt"; fail "$1 train --family $2"; }
  grep -q "^test: " "$work/$1.txt" || fail "$1: no test score"
  grep -q "\"family\": \"$2\"" "$work/$1/run.json" || fail "$1: run.json does not record the family $2"
  trained=$(grep "^test: " "$work/$1.txt")
  again=$("$bin/$1" evaluate --output_dir "$work/$1" 2>/dev/null | grep "^test: ")
  [ "$again" = "$trained" ] || fail "$1 evaluate gives '$again', training gave '$trained'"
  "$bin/$1" predict --output_dir "$work/$1" --input "$work/$1/sample_data/raw.txt" --predictions "$work/$1.jsonl" \
    2>/dev/null || fail "$1 predict"
  [ "$(wc -l <"$work/$1.jsonl")" -eq 20 ] || fail "$1 predict: $(wc -l <"$work/$1.jsonl") records for 20 lines"
  echo "modes: $1 --family $2 trained ($trained), evaluated the same and predicted"
}
train ner_adapters nested
train ner_prompt discontinuous
train ner_adapters_prompt flat
train ner_embeddings flat
# A family program serves its own family only; its run is refused by another family's program.
expect_error "family nested contradicts the program: flat_ner serves flat data" \
  "$bin/flat_ner" plan $tiny --family nested --output_dir "$work/x"
expect_error "ner_adapters" "$bin/flat_ner" plan $tiny --peft adapters --output_dir "$work/x"
grep -q "built by default" "$work/err.txt" || fail "the refusal of --peft adapters does not name the built program"

# 3. ner_lora from a Hugging Face checkpoint; export as PEFT LoRA and as a merged Hugging Face folder.
"$bin/ner_lora" train $tiny --output_dir "$work/scratch_lora" >/dev/null 2>&1 || fail "ner_lora from scratch"
pieces=$(jq '.config.vocab_size' "$work/scratch_lora/run.json")
"$make_checkpoint" "$work/models/small-t5" "$pieces" 32
cp "$work/scratch_lora/spiece.model" "$work/models/small-t5/spiece.model"
"$bin/ner_lora" train $run --model "$work/models/small-t5" --output_dir "$work/lora" >"$work/lora.txt" 2>&1 ||
  { tail -20 "$work/lora.txt"; fail "ner_lora --model DIR"; }
"$bin/ner_lora" export --output_dir "$work/lora" --to "$work/peft" >"$work/export.txt" || fail "export (peft)"
jq -e '.peft_type == "LORA" and .r == 8 and .lora_alpha == 16 and (.target_modules | sort) == ["q", "v"]' \
  "$work/peft/adapter_config.json" >/dev/null || fail "adapter_config.json: $(cat "$work/peft/adapter_config.json")"
jq -e '.base_model_name_or_path | endswith("models/small-t5")' "$work/peft/adapter_config.json" >/dev/null ||
  fail "adapter_config.json does not name the base model"
[ -s "$work/peft/adapter_model.safetensors" ] || fail "no adapter_model.safetensors"
"$bin/ner_lora" export --output_dir "$work/lora" --to "$work/hf" --format hf >/dev/null || fail "export (hf)"
for f in config.json model.safetensors spiece.model; do [ -s "$work/hf/$f" ] || fail "export hf: no $f"; done
# The merged folder is a --model folder: its weights differ from the base's exactly where LoRA trained.
"$bin/flat_ner" plan $run --model "$work/hf" --output_dir "$work/x" >"$work/merged.json" 2>/dev/null ||
  fail "flat_ner cannot plan from the exported folder"
"$bin/flat_ner" plan $run --model "$work/models/small-t5" --output_dir "$work/x" >"$work/base.json" 2>/dev/null
[ "$(jq .model.initial_weights_abs_sum "$work/merged.json")" != "$(jq .model.initial_weights_abs_sum "$work/base.json")" ] ||
  fail "the exported weights equal the base model's: the LoRA factors were not merged"
expect_error "expected a new or empty folder" "$bin/ner_lora" export --output_dir "$work/lora" --to "$work/hf"
expect_error "Hugging Face's T5 has no place for the adapters" \
  "$bin/ner_adapters" export --output_dir "$work/ner_adapters" --to "$work/no"
expect_error "trains none (peft embeddings)" \
  "$bin/ner_embeddings" export --output_dir "$work/ner_embeddings" --to "$work/no" --format peft
[ ! -e "$work/no" ] || fail "a refused export left $work/no behind"
ls "$work" | grep -q "tmp-" && fail "export left a temporary folder: $(ls "$work" | grep tmp-)"
echo "modes: ner_lora trained from a checkpoint, exported as PEFT LoRA and as a merged Hugging Face folder"
