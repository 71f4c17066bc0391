#!/usr/bin/env bash
# Builds bench/bench.wasm (the guest of `npm run bench`) from bench/bench.c with Debian's clang.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/wasi-toolchain.sh
if [ ! -f bench/bench.wasm ] || [ bench/bench.c -nt bench/bench.wasm ]; then
  ensure_wasi_toolchain build-bench
  clang --target=wasm32-wasi -O2 -Wl,--strip-all -o bench/bench.wasm bench/bench.c
fi
