#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build of the test executable (its own build
# folder, -O1, only genner_tests), run on the fast component tags.
# Usage: scripts/sanitize.sh [build-dir]   (default: build-asan)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build-asan}"
start=$(date +%s)
# The translation units that hold the tags run below (test_seed has [model] and [generate] cases,
# test_train a [hardening] one).
units="${GENNER_SANITIZE_UNITS:-io;text;data;sample;hardening;generate;model;seed;serve;train}"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
flags="-O1 -g1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize "${launcher[@]}" \
  -DCMAKE_CXX_FLAGS_SANITIZE="$flags" -DCMAKE_EXE_LINKER_FLAGS_SANITIZE="-fsanitize=address,undefined" \
  -DGENNER_BUILD_BENCH=OFF -DGENNER_BUILD_EXAMPLES=OFF -DGENNER_TCMALLOC=OFF -DGENNER_TEST_UNITS="$units" >/dev/null
cmake --build "$build_dir" --target genner_tests -j "$(nproc)"
built=$(date +%s)
echo "sanitize: the [deepbind] tests are not run here: they open libsentencepiece with" \
     "dlopen(RTLD_DEEPBIND), which AddressSanitizer cannot host; the normal build runs them"
# Leak checking is off: libtorch keeps process-lifetime allocations that LeakSanitizer reports.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
tags="${GENNER_SANITIZE_TAGS:-[io]~[deepbind],[text]~[deepbind],[data],[hardening],[generate],[model],[serve]}"
"$build_dir/tests/genner_tests" "$tags"
echo "sanitize: build $((built - start)) s, tests $(( $(date +%s) - built )) s"
