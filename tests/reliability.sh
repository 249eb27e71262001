#!/bin/sh
# Driver-level reliability checks (CTest example.reliability): a run folder whose parts provably
# belong together (manifest), the run's recorded family and data obeyed, outputs streamed into what
# is not a regular file, temporaries removed on every exit path, a line in giving its record out,
# output lost to a full disk failing, and the --nproc launcher taking its ranks down with it.
# Usage: reliability.sh FLAT_NER NESTED_NER WORK_DIR
set -eu
flat="$1"; nested="$2"; work="$3"
rm -rf "$work"; mkdir -p "$work"
tiny="--scratch_d_model 32 --scratch_d_ff 64 --spm_vocab_size 200"
name=reliability
. "$(dirname "$0")/expect.sh"

# wait_for SECONDS COMMAND...: polls until COMMAND succeeds.
wait_for() {
  limit=$(( $1 * 10 )); shift; i=0
  until "$@"; do
    i=$((i + 1)); [ "$i" -lt "$limit" ] || return 1
    sleep 0.1
  done
}
lines_in() { [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ]; }
no_temporaries() { ! ls -a "$1" | grep -q '\.tmp-'; }

# The run trains on a data folder of its own (a copy of the sample data).
# plan creates nothing: a one-step run writes the sample data to copy.
"$flat" --sample_size 100 --max_steps 1 --scratch_d_model 32 --scratch_d_ff 64 --spm_vocab_size 200 --resume false \
  --output_dir "$work/gen" >/dev/null 2>&1 || fail "a one-step run writing the sample data"
cp -r "$work/gen/sample_data" "$work/data1"
cp -r "$work/gen/sample_data" "$work/data2"
run="$work/run"
"$flat" train $tiny --data_dir "$work/data1" --epochs 1 --resume false --output_dir "$run" >"$work/train.txt" 2>&1 ||
  { cat "$work/train.txt"; fail "training"; }
[ -f "$run/manifest.json" ] || fail "no manifest.json after training"
printf 'John Smith lives in Paris.\nAngela Merkel visited Berlin on Monday.\n' > "$work/in.txt"

# 1. The run's family decides: nested_ner refuses a flat run instead of decoding it as nested.
expect_error "trained on flat data by flat_ner" "$nested" predict --output_dir "$run" --input "$work/in.txt"
expect_error "trained on flat data by flat_ner" "$nested" evaluate --output_dir "$run"
echo "reliability: a flat run is refused by nested_ner"
# An entity type the run never saw is refused naming the file and sentence, not deep in encoding.
cp -r "$work/data1" "$work/data3"
sed -i '0,/B-LOC/s//B-VENUE/' "$work/data3/test.txt"
expect_error "data3/test.txt: sentence" "$flat" evaluate --output_dir "$run" --data_dir "$work/data3"
expect_error "has entity type 'VENUE', which the run in" "$flat" evaluate --output_dir "$run" --data_dir "$work/data3"
echo "reliability: a type unseen in training is refused at evaluate with its file and sentence"
# A from-scratch model too large for the memory budget is refused before anything is allocated,
# naming the settings and where the budget came from (a limit of the process counts).
expect_error "--scratch_d_model 65536 --scratch_d_ff 64 --scratch_heads 4 --scratch_layers 2 has about" \
  "$flat" plan --scratch_d_model 65536 --scratch_d_ff 64 --spm_vocab_size 200 --sample_size 100 --output_dir "$work/huge"
grep -q "of fp32 weights alone, more than the memory budget .* (the .*); choose smaller scratch_\* settings" "$work/err.txt" ||
  { cat "$work/err.txt"; fail "the budget's source is not named"; }
expect_error "(the address-space limit (ulimit -v))" sh -c \
  "ulimit -v 6000000 && exec '$flat' plan --scratch_d_model 8192 --scratch_d_ff 64 --spm_vocab_size 200 --sample_size 100 --output_dir '$work/huge'"
echo "reliability: a model larger than the memory budget (machine, cgroup or ulimit) is refused before it is built"

# 2. The manifest ties run.json, spiece.model and best.safetensors together.
cp -r "$run" "$work/changed"
printf ' ' >> "$work/changed/run.json"  # still valid JSON, but not the file training saved
expect_error "run.json: expected SHA-256" "$flat" evaluate --output_dir "$work/changed"
cp "$run/run.json" "$work/changed/run.json"
cp "$work/changed/best.safetensors" "$work/best.copy"
printf 'x' | dd of="$work/changed/best.safetensors" bs=1 seek=200 conv=notrunc 2>/dev/null
expect_error "best.safetensors: expected SHA-256" "$flat" predict --output_dir "$work/changed" --input "$work/in.txt"
cp "$work/best.copy" "$work/changed/best.safetensors"
"$flat" evaluate --output_dir "$work/changed" >/dev/null 2>&1 || fail "evaluate after the files were restored"
rm "$work/changed/manifest.json"
expect_error "expected the run's manifest" "$flat" evaluate --output_dir "$work/changed"
echo "reliability: a changed record or weight file, or no manifest, is refused"

# 3. A restarted run killed before its first evaluation leaves no earlier weights beside its run.json.
cp -r "$run" "$work/restart"
touch "$work/marker"
"$flat" train $tiny --data_dir "$work/data1" --epochs 50 --eval_every 1000000 --resume false --output_dir "$work/restart" \
  >"$work/restart.txt" 2>&1 &
pid=$!
wait_for 120 test "$work/restart/run.json" -nt "$work/marker" || { kill -9 $pid; fail "the restarted run wrote no run.json"; }
kill -9 $pid; wait $pid 2>/dev/null || true
[ ! -e "$work/restart/best.safetensors" ] || fail "the earlier run's best.safetensors stayed beside the new run.json"
expect_error "expected the run's manifest" "$flat" evaluate --output_dir "$work/restart"
echo "reliability: a restarted run leaves no earlier weights behind"

# 4. Resuming on other data is refused (the checkpoint's weights and tokenizer belong to its data).
expect_error "cannot resume: the run was trained on the data in" \
  "$flat" train $tiny --epochs 1 --output_dir "$run" --data_dir "$work/data2"
# Settings that change nothing the run computes may be given anew on resume; one that shapes training may not.
"$flat" train $tiny --data_dir "$work/data1" --epochs 1 --output_dir "$run" --dist_timeout 60 --backend gloo \
  --memory_budget 20GB >"$work/resume.txt" 2>&1 || { cat "$work/resume.txt"; fail "resume with a new --dist_timeout, --backend, --memory_budget"; }
expect_error "settings that shape training differ from the checkpoint's: lr" \
  "$flat" train $tiny --data_dir "$work/data1" --epochs 1 --output_dir "$run" --lr 0.001  # the sample default is 0.003
# evaluate obeys --dataset rather than silently using the recorded data.
expect_error "conll2003" env GENNER_DATA="$work/no_data" "$flat" evaluate --output_dir "$run" --dataset conll2003

# 5. --predictions into what is not a regular file streams into it; a symlink stays a link.
mkfifo "$work/fifo"
cat "$work/fifo" > "$work/from_fifo.jsonl" &
reader=$!
"$flat" predict --output_dir "$run" --input "$work/in.txt" --predictions "$work/fifo" 2>/dev/null ||
  fail "predict into a FIFO"
wait $reader
[ -p "$work/fifo" ] || fail "the FIFO was replaced by a regular file"
lines_in "$work/from_fifo.jsonl" 2 || fail "the FIFO's reader got $(wc -l < "$work/from_fifo.jsonl") lines, expected 2"
"$flat" predict --output_dir "$run" --input "$work/in.txt" --predictions /proc/self/fd/1 >"$work/fd1.jsonl" 2>/dev/null
lines_in "$work/fd1.jsonl" 2 || fail "--predictions /proc/self/fd/1 did not reach standard output"
"$flat" predict --output_dir "$run" --input "$work/in.txt" --predictions /dev/stdout >"$work/stdout.jsonl" 2>/dev/null
lines_in "$work/stdout.jsonl" 2 || fail "--predictions /dev/stdout did not reach standard output"
ln -s target.jsonl "$work/link.jsonl"  # relative and dangling
"$flat" predict --output_dir "$run" --input "$work/in.txt" --predictions "$work/link.jsonl" 2>/dev/null
[ -L "$work/link.jsonl" ] && lines_in "$work/target.jsonl" 2 || fail "a symlink was replaced, or its target not written"
expect_error "disk full" "$flat" predict --output_dir "$run" --input "$work/in.txt" --predictions /dev/full
echo "reliability: FIFO, /proc/self/fd/1, /dev/stdout, symlink and /dev/full outputs"

# 6. Temporaries never stay: invalid input, SIGTERM mid-run.
mkdir -p "$work/out"
printf 'fine\nbad \377 byte\n' > "$work/bad.txt"
expect_error "bad.txt:2" "$flat" predict --output_dir "$run" --input "$work/bad.txt" --predictions "$work/out/bad.jsonl"
no_temporaries "$work/out" || fail "invalid input left a temporary: $(ls -a "$work/out")"
mkfifo "$work/in.fifo"
exec 3<>"$work/in.fifo"
"$flat" predict --output_dir "$run" --input - --predictions "$work/out/term.jsonl" <"$work/in.fifo" 2>/dev/null 3>&- &
pid=$!
echo 'John Smith lives in Paris.' >&3
# The line's record is written before any further input arrives.
wait_for 120 sh -c "cat '$work/out/'term.jsonl.tmp-* 2>/dev/null | grep -q entities" ||
  { kill -9 $pid; fail "no record for the first line while the input stayed open"; }
kill -TERM $pid
set +e; wait $pid; rc=$?; set -e
exec 3>&-
[ "$rc" -ne 0 ] || fail "predict ended by SIGTERM exited 0"
no_temporaries "$work/out" || fail "SIGTERM left a temporary: $(ls -a "$work/out")"
echo "reliability: no temporary after invalid input or SIGTERM"

# 7. Standard output: a line in, its record out; closed standard input and a full disk are errors.
exec 3<>"$work/in.fifo"
"$flat" predict --output_dir "$run" --input - <"$work/in.fifo" >"$work/stream.jsonl" 2>/dev/null 3>&- &
pid=$!
echo 'John Smith lives in Paris.' >&3
wait_for 120 lines_in "$work/stream.jsonl" 1 || { kill -9 $pid; fail "no record for the first line on standard output"; }
printf 'Angela Merkel visited Berlin.\r' >&3
wait_for 60 lines_in "$work/stream.jsonl" 2 || { kill -9 $pid; fail "no record for a CR-ended line"; }
exec 3>&-
wait $pid || fail "predict from a pipe"
set +e; "$flat" predict --output_dir "$run" --input - <&- >/dev/null 2>"$work/err.txt"; rc=$?; set -e
[ "$rc" -eq 1 ] && grep -q "found it closed" "$work/err.txt" || { cat "$work/err.txt"; fail "closed standard input"; }
set +e; "$flat" plan $tiny --sample_size 100 --output_dir "$work/plan" >/dev/full 2>"$work/err.txt"; rc=$?; set -e
[ "$rc" -eq 1 ] && grep -q "standard output" "$work/err.txt" || { cat "$work/err.txt"; fail "plan to a full disk"; }
set +e; "$flat" evaluate --output_dir "$run" >/dev/full 2>"$work/err.txt"; rc=$?; set -e
[ "$rc" -eq 1 ] && grep -q "standard output" "$work/err.txt" || { cat "$work/err.txt"; fail "evaluate to a full disk"; }
echo "reliability: streamed standard output; closed input and full disk refused"
# --format conll marks each blank input line, so its blocks stay aligned with the input's lines.
printf 'John Smith lives in Paris.\n\n\nAngela Merkel visited Berlin.\n' > "$work/gaps.txt"
"$flat" predict --output_dir "$run" --input "$work/gaps.txt" --format conll --predictions "$work/gaps.conll" 2>/dev/null ||
  fail "predict --format conll"
grep -qx '# blank input line 2' "$work/gaps.conll" && grep -qx '# blank input line 3' "$work/gaps.conll" ||
  { cat "$work/gaps.conll"; fail "blank input lines 2 and 3 are not marked in the CoNLL output"; }
echo "reliability: --format conll marks blank input lines"

# 8. SIGTERM to the --nproc launcher ends both ranks (none is left holding the run folder's lock).
"$flat" train $tiny --data_dir "$work/data1" --epochs 50 --nproc 2 --resume false --output_dir "$work/nproc" >"$work/nproc.txt" 2>&1 &
launcher=$!
wait_for 120 sh -c "[ \$(pgrep -P $launcher | wc -l) -ge 2 ]" || { kill -9 $launcher; fail "the ranks did not start"; }
ranks=$(pgrep -P $launcher)
sleep 1
kill -TERM $launcher
set +e; wait $launcher; rc=$?; set -e
[ "$rc" -ne 0 ] || fail "the launcher ended by SIGTERM exited 0"
for r in $ranks; do
  wait_for 30 sh -c "! kill -0 $r 2>/dev/null" || { kill -9 $ranks; fail "rank $r outlived the launcher"; }
done
echo "reliability: SIGTERM to the launcher stops every rank"
