#!/usr/bin/env bash
# Fuzzes every parser of untrusted input with libFuzzer (AddressSanitizer + UBSan) for a
# bounded time each, starting from the committed seed corpus in tests/fuzz/corpus/<parser>/,
# then replays tests/fuzz/regressions/<parser>/ (inputs that once failed).
# Usage: scripts/fuzz.sh [seconds-per-parser] [build-dir]   (defaults: 20, build-fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
build_dir="${2:-build-fuzz}"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
start=$(date +%s)
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" \
  -DGENNER_FUZZ=ON -DGENNER_BUILD_TESTS=OFF -DGENNER_BUILD_BENCH=OFF -DGENNER_BUILD_EXAMPLES=OFF -DGENNER_TCMALLOC=OFF >/dev/null
cmake --build "$build_dir" --target genner_fuzz -j "$(nproc)"
echo "fuzz: built in $(( $(date +%s) - start )) s"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in safetensors spiece conll nested discontinuous config run_json; do
  mkdir -p "$work/$target"
  regressions=tests/fuzz/regressions/$target
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    GENNER_FUZZ_TARGET=$target "$build_dir/tests/fuzz/genner_fuzz" "$regressions"/* >"$work/$target.replay" 2>&1 ||
      { cat "$work/$target.replay"; echo "fuzz: $target: a regression input fails again" >&2; exit 1; }
  fi
  # -seed fixes the mutation sequence; coverage feedback comes from trace-cmp (value profile); the new
  # corpus goes to a scratch folder, the seeds stay as committed.
  if ! GENNER_FUZZ_TARGET=$target TMPDIR="$work" "$build_dir/tests/fuzz/genner_fuzz" "$work/$target" "tests/fuzz/corpus/$target" \
      -seed=1 -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -use_value_profile=1 \
      -artifact_prefix="$work/$target-" -print_final_stats=1 >"$work/$target.log" 2>&1; then
    tail -50 "$work/$target.log"
    echo "fuzz: $target: finding above; inputs:" "$work/$target"-* >&2
    mkdir -p "fuzz-findings/$target" && cp "$work/$target"-* "fuzz-findings/$target/" 2>/dev/null || true
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target.log")
  echo "fuzz: $target: $runs executions in $seconds s, no finding"
done
echo "fuzz: total $(( $(date +%s) - start )) s"
