#!/bin/sh
# Accuracy kept on the built-in default (CTest example.precision_default): flat_ner trained in fp32
# and in bf16 mixed precision with the same seed (side by side, one thread each, so each run is
# deterministic) must end within 1.0 test F1 of each other, and bf16 and int8 inference of the
# fp32-trained model within 0.5 test F1 of its fp32 inference.
# Usage: precision_default.sh FLAT_NER WORK_DIR
set -eu
exe="$1"; work="$2"; name=precision_default
rm -rf "$work"; mkdir -p "$work"
. "$(dirname "$0")/expect.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
# bf16 runs where the CPU has bf16 instructions; elsewhere the drivers refuse it with a sentence
# (checked here), never falling back to fp32, and int8 inference is still held to fp32.
if ! grep -qw -e avx512_bf16 -e amx_bf16 /proc/cpuinfo; then
  if "$exe" --precision bf16 --resume false --epochs 1 --output_dir "$work/bf16" >"$work/bf16.txt" 2>&1; then
    fail "bf16 training ran on a CPU without bf16 instructions"
  fi
  grep -q "no native bf16" "$work/bf16.txt" || { cat "$work/bf16.txt"; fail "bf16 refused without the sentence"; }
  "$exe" --precision fp32 --resume false --output_dir "$work/fp32" >"$work/fp32.txt" 2>&1 || { cat "$work/fp32.txt"; fail "fp32 training"; }
  if "$exe" evaluate --output_dir "$work/fp32" --precision bf16 >"$work/eval_bf16.txt" 2>&1; then
    fail "bf16 evaluation ran on a CPU without bf16 instructions"
  fi
  grep -q "no native bf16" "$work/eval_bf16.txt" || { cat "$work/eval_bf16.txt"; fail "bf16 evaluate refused without the sentence"; }
  "$exe" evaluate --output_dir "$work/fp32" --precision int8 >"$work/eval_int8.txt" 2>&1 || { cat "$work/eval_int8.txt"; fail "evaluate --precision int8"; }
  f1() { sed -n 's/^test: .* F1 \([0-9.]*\) .*/\1/p' "$1" | tail -n 1; }
  fp32=$(f1 "$work/fp32.txt"); int8_inference=$(f1 "$work/eval_int8.txt")
  [ -n "$fp32" ] && [ -n "$int8_inference" ] || fail "a test F1 is missing"
  echo "$name: this CPU has no bf16 instructions: bf16 training and evaluation are refused (checked); test F1: fp32 $fp32, int8 inference $int8_inference"
  awk -v a="$int8_inference" -v b="$fp32" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.5) }' ||
    fail "int8 inference $int8_inference is more than 0.5 F1 from fp32 $fp32"
  echo "$name: int8 inference within 0.5 test F1 of fp32"
  exit 0
fi
"$exe" --precision fp32 --resume false --output_dir "$work/fp32" >"$work/fp32.txt" 2>&1 &
fp32_pid=$!
"$exe" --precision bf16 --resume false --output_dir "$work/bf16" >"$work/bf16.txt" 2>&1 &
bf16_pid=$!
wait "$fp32_pid" || { cat "$work/fp32.txt"; fail "fp32 training"; }
wait "$bf16_pid" || { cat "$work/bf16.txt"; fail "bf16 training"; }
f1() { sed -n 's/^test: .* F1 \([0-9.]*\) .*/\1/p' "$1" | tail -n 1; }
fp32=$(f1 "$work/fp32.txt"); bf16=$(f1 "$work/bf16.txt")
for p in bf16 int8; do
  "$exe" evaluate --output_dir "$work/fp32" --precision "$p" >"$work/eval_$p.txt" 2>&1 || { cat "$work/eval_$p.txt"; fail "evaluate --precision $p"; }
done
bf16_inference=$(f1 "$work/eval_bf16.txt"); int8_inference=$(f1 "$work/eval_int8.txt")
echo "$name: test F1: fp32 training $fp32, bf16 training $bf16; fp32-trained model evaluated in bf16 $bf16_inference, int8 $int8_inference"
within() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; }
[ -n "$fp32" ] && [ -n "$bf16" ] && [ -n "$bf16_inference" ] && [ -n "$int8_inference" ] || fail "a test F1 is missing"
within "$bf16" "$fp32" 1.0 || fail "bf16 training $bf16 is more than 1.0 F1 from fp32 training $fp32"
within "$bf16_inference" "$fp32" 0.5 || fail "bf16 inference $bf16_inference is more than 0.5 F1 from fp32 $fp32"
within "$int8_inference" "$fp32" 0.5 || fail "int8 inference $int8_inference is more than 0.5 F1 from fp32 $fp32"
echo "$name: within 1.0 (bf16 training) and 0.5 (bf16 and int8 inference) test F1 of fp32"
