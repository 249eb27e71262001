#!/usr/bin/env bash
# Installs what genner needs on Debian 12 and builds it (tests, benchmarks, examples).
# Usage: scripts/setup.sh [build-dir]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"

packages=(
  build-essential cmake ninja-build pkg-config ccache
  libtorch-dev libdnnl-dev libopenblas0-pthread libtcmalloc-minimal4
  libsentencepiece-dev libsentencepiece0 sentencepiece
  librange-v3-dev libboost-dev nlohmann-json3-dev
  catch2 libbenchmark-dev libgloo-dev libcpp-httplib-dev curl zlib1g-dev jq
  clang libclang-rt-14-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# LibTorch must use OpenBLAS, not the reference BLAS (about 10x slower here).
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 || true)
case "$blas" in
  *openblas*) ;;
  *) echo "setup: warning: libblas.so.3 resolves to $blas, not OpenBLAS; run update-alternatives --config libblas.so.3-x86_64-linux-gnu" >&2 ;;
esac

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}"
cmake --build "$build_dir" -j "$(nproc)"
