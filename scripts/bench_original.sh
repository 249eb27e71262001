#!/usr/bin/env bash
# Times genner beside the original implementation (the T5 branch of BARTNER, Python) in one run on
# this machine: the original's seed_bench.py, then genner's bench_ner on the very weights the
# original timed, under two thread settings, and prints the ratios.
#   one:     OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 for both programs
#   default: each program's own threads (the original: one OpenMP thread, OpenBLAS's own count;
#            genner: genner/core/threading.hpp's choice per precision)
# OMP_WAIT_POLICY=PASSIVE for both in both settings; bench_ner, as genner's programs do, adds
# OPENBLAS_THREAD_TIMEOUT=18 when it is not set and runs on tcmalloc (genner_use_tcmalloc).
# Usage: scripts/bench_original.sh [--train] [build-dir]   (default: build; bench_ner must be built)
#   --train: the training steps only (about 4 minutes instead of 20): the original predicts 32
#            sentences instead of 256 (seed_bench.py needs some), genner runs its training
#            benchmarks only, and the table has no prediction rows.
# Needs the original set up (../shared/original/README.md); writes into <build-dir>/bench-original/.
set -euo pipefail
cd "$(dirname "$0")/.."
train_only=0
if [ "${1:-}" = "--train" ]; then
  train_only=1
  shift
fi
build=${1:-build}
shared=${GENNER_SHARED:-../shared}
work=${GENNER_ORIGINAL_DIR:-$HOME/.cache/genner-original}
bench="$build/bench/bench_ner"
python=/usr/bin/python3
if [ ! -f "$shared/original/seed_bench.py" ] || [ ! -d "$work/vendor" ] || ! "$python" -c "import torch" 2>/dev/null; then
  cat >&2 <<EOF
bench_original: the original implementation is not set up here (looked for $shared/original/seed_bench.py,
$work/vendor and Debian's python3-torch). Set it up once, as $shared/original/README.md says:
    bash $shared/original/setup.sh BARTNER_GIT FASTNLP_GIT NEWT5_GIT HF_HUB_GIT SAFETENSORS_GIT
(git directories of yuq-1s/BARTNER, fastnlp/fastNLP, lih1130/newT5, huggingface/huggingface_hub,
huggingface/safetensors), then run this script again.
EOF
  exit 2
fi
[ -x "$bench" ] || { echo "bench_original: $bench is not built (cmake --build $build --target bench_ner)" >&2; exit 2; }
out="$build/bench-original"
mkdir -p "$out"
shared_abs=$(cd "$shared" && pwd)
machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
for setting in one default; do
  envs=(OMP_WAIT_POLICY=PASSIVE)
  [ "$setting" = one ] && envs+=(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1)
  sentences=256 filter=.
  [ "$train_only" = 1 ] && sentences=32 filter=train_step/seed
  echo "bench_original: [$setting threads] the original (seed_bench.py)" >&2
  (cd "$shared_abs/original" && env -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS "${envs[@]}" \
    "$python" seed_bench.py --base small --threads 1 --n "$sentences") >"$out/original-$setting.log" 2>&1 ||
    { cat "$out/original-$setting.log" >&2; exit 1; }
  cp "$work/out/seed/bench/result-small.json" "$out/original-$setting.json"
  echo "bench_original: [$setting threads] genner (bench_ner on the same weights)" >&2
  env -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS "${envs[@]}" GENNER_ORIGINAL_BENCH="$work/out/seed/bench/small" \
    "$bench" --benchmark_filter="$filter" --benchmark_format=json --benchmark_out="$out/genner-$setting.json" --benchmark_out_format=json \
    >"$out/genner-$setting.log" 2>&1 || { cat "$out/genner-$setting.log" >&2; exit 1; }
done
"$python" - "$out" "$machine" "$train_only" <<'EOF'
import json, sys
out, machine, train_only = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
rows = [  # label, genner benchmark name, the original's figure it is compared with
    ("predict, the original's way (file order, rows kept, caches concatenated)",
     "BM_Predict/precision:0/sorted:0/drop:0", "predict_greedy"),
    ("predict fp32 (genner's default decoding)", "BM_Predict/precision:0/sorted:1/drop:1", "predict_greedy"),
    ("predict bf16", "BM_Predict/precision:1/sorted:1/drop:1", "predict_greedy"),
    ("predict int8", "BM_Predict/precision:2/sorted:1/drop:1", "predict_greedy"),
    ("train step, full fine-tuning fp32", "train_step/seed_finetune/precision:0", "train_step_finetune"),
    ("train step, full fine-tuning bf16", "train_step/seed_finetune/precision:1", "train_step_finetune"),
    ("train step, adapters fp32", "train_step/seed_adapter/precision:0", "train_step_adapter"),
    ("train step, adapters bf16", "train_step/seed_adapter/precision:1", "train_step_adapter"),
]
if train_only:
    rows = [r for r in rows if r[2].startswith("train")]
tcmalloc_seen = []
def load(setting):
    o = json.load(open(f"{out}/original-{setting}.json"))
    g = {}
    for b in json.load(open(f"{out}/genner-{setting}.json"))["benchmarks"]:
        if b.get("error_occurred"):
            g[b["run_name"]] = None
            continue
        scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[b["time_unit"]]
        # A training step: the median of its timed steps, as the original reports its own (mean otherwise).
        t = b["step_median_ms"] * 1e-3 if "step_median_ms" in b else b["real_time"] * scale
        g[b["run_name"]] = (t, b.get("openmp_threads"), b.get("openblas_threads"))
        tcmalloc_seen.append(b.get("tcmalloc") == 1)
    return o, g
def find(g, prefix):
    for name, v in g.items():
        if name.startswith(prefix):
            return v
    return None
def fmt(v, unit_ms):
    return f"{v * 1000:.0f} ms" if unit_ms else f"{v:.1f} s"
data = {s: load(s) for s in ("one", "default")}
tcmalloc = bool(tcmalloc_seen) and all(tcmalloc_seen)
print(f"Measured in one run on this machine ({machine}); wall time.")
if train_only:
    print("Training steps only (--train): random weights of the same shape in both programs (a step's time "
          "does not depend on them).")
else:
    print(f"Prediction on the same weights (the original's seed_bench.py checkpoint; genner decoded it: "
          f"{'yes' if find(data['one'][1], rows[0][1]) is not None else 'no'}).")
print("one: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 for both; default: each program's own threads "
      "(genner's per row in brackets: OpenMP/OpenBLAS). OMP_WAIT_POLICY=PASSIVE for both; genner, as its "
      "programs do, adds OPENBLAS_THREAD_TIMEOUT=18 (genner/core/threading.hpp) and runs on tcmalloc "
      f"({'yes' if tcmalloc else 'no'}); "
      "the original on the C library's malloc.")
print("A training step: the median of five timed steps after two warm-up ones, in both programs. A "
      "prediction: genner's one pass, cold; the original's median of three passes after a warm-up one.\n")
print("| workload | original, one / default | genner, one / default | ratio, one | ratio, default |")
print("|---|---|---|---|---|")
for label, name, key in rows:
    cells = []
    for s in ("one", "default"):
        o, g = data[s]
        ov = o[key]["median_s"]
        gv = find(g, name)
        cells.append((ov, gv))
    unit_ms = key.startswith("train")
    orig = " / ".join(fmt(c[0], unit_ms) for c in cells)
    gen = " / ".join("refused" if c[1] is None else fmt(c[1][0], unit_ms) + (f" [{int(c[1][1])}/{int(c[1][2])}]" if c is cells[1] else "")
                     for c in cells)
    rat = ["n/a" if c[1] is None else f"{c[0] / c[1][0]:.2f}x" for c in cells]
    print(f"| {label} | {orig} | {gen} | {rat[0]} | {rat[1]} |")
EOF
