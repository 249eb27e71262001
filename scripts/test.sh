#!/usr/bin/env bash
# Sets up and builds genner (scripts/setup.sh), then runs the whole test suite.
# Usage: scripts/test.sh [build-dir]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"
bash scripts/setup.sh "$build_dir"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
# Two tests at a time: most of them spend much of their time starting processes and in one
# thread, and the longest (example.precision_default) then runs beside the rest.
ctest --test-dir "$build_dir" --output-on-failure -j 2 --timeout 1800
