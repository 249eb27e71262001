#!/bin/sh
# The serve command end to end (CTest example.serve): a quickly trained run folder served on a free
# loopback port; a text's record equals predict's line for it, refusals are JSON with their status,
# health and metrics answer, bad options are refused, and SIGTERM ends the server with status 0.
# Usage: serve.sh FLAT_NER WORK_DIR
set -eu
flat="$1"; work="$2"
rm -rf "$work"; mkdir -p "$work"
name=serve
. "$(dirname "$0")/expect.sh"
command -v curl >/dev/null || fail "curl is needed (Debian: curl)"

tiny="--sample_size 100 --epochs 1 --scratch_d_model 32 --scratch_d_ff 64 --spm_vocab_size 200 --resume false"
"$flat" train $tiny --seed 3 --output_dir "$work/run" >"$work/train.txt" 2>&1 || { cat "$work/train.txt"; fail "training"; }

# Options are checked before anything is loaded; predict's and serve's own options stay apart.
expect_error "--max_batch: expected an integer >= 1" "$flat" serve --output_dir "$work/run" --max_batch 0
expect_error "--port: expected an integer in .0, 65535." "$flat" serve --output_dir "$work/run" --port 70000
expect_error "--long_texts: expected one of 'refuse' 'split'" "$flat" serve --output_dir "$work/run" --long_texts maybe
expect_error "below --max_texts" "$flat" serve --output_dir "$work/run" --max_queue 2 --max_texts 3
expect_error "belongs to the serve command" "$flat" predict --output_dir "$work/run" --input - --port 1
expect_error "--format belongs to the predict and export commands" "$flat" serve --output_dir "$work/run" --format conll
expect_error "not a run folder" "$flat" serve --output_dir "$work/nothing" --port 0
"$flat" serve --help | grep -q -- "--max_wait_ms" || fail "--help does not list serve's options"

# The files exist before the loop below reads them: the background shell opens them when it runs.
: >"$work/serve.out"
"$flat" serve --output_dir "$work/run" --port 0 --max_wait_ms 1 >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
port=""
for _ in $(seq 1 300); do
  port=$(sed -n 's|^serve: listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$work/serve.out")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.err"; fail "the server exited before listening"; }
  sleep 0.1
done
[ -n "$port" ] || { kill "$pid"; fail "the server did not print its port"; }
url="http://127.0.0.1:$port"
post() { curl -s -o "$work/body.json" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$1" "$url/v1/recognize"; }

text='John Smith flew from Paris to Berlin on Monday .'
status=$(post "{\"text\": \"$text\"}")
[ "$status" = 200 ] || { cat "$work/body.json"; kill "$pid"; fail "POST /v1/recognize answered $status"; }
printf '%s\n' "$text" | "$flat" predict --output_dir "$work/run" --input - >"$work/predict.jsonl" 2>/dev/null
cmp "$work/body.json" "$work/predict.jsonl" || { kill "$pid"; fail "serve's record differs from predict's line"; }
echo "serve: a text's record is predict's line for it"

status=$(post '{"text": ')
[ "$status" = 400 ] && grep -q '"error":"malformed JSON' "$work/body.json" || { cat "$work/body.json"; kill "$pid"; fail "bad JSON: $status"; }
status=$(post '{"texts": 3}')
[ "$status" = 400 ] && grep -q 'expected an array of strings' "$work/body.json" || { kill "$pid"; fail "bad texts: $status"; }
curl -s "$url/health" | grep -q '"status":"ok"' || { kill "$pid"; fail "GET /health"; }
curl -s "$url/metrics" | grep -q '"batch_size_histogram"' || { kill "$pid"; fail "GET /metrics"; }
status=$(curl -s -o "$work/body.json" -w '%{http_code}' "$url/nowhere")
[ "$status" = 404 ] && grep -q 'no such endpoint' "$work/body.json" || { kill "$pid"; fail "unknown path: $status"; }
echo "serve: refusals are JSON errors with their status; health and metrics answer"

kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e
[ "$rc" -eq 0 ] || { cat "$work/serve.err"; fail "SIGTERM: exit status $rc, expected 0"; }
grep -q "SIGTERM received" "$work/serve.err" && grep -q 'serve: stopped; responses by status {"200":3,"400":2,"404":1}; 1 text(s) decoded in 1 batch(es)' "$work/serve.err" ||
  { cat "$work/serve.err"; fail "no shutdown summary"; }
echo "serve: SIGTERM stops the server gracefully with exit status 0"
