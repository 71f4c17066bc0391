#!/usr/bin/env bash
# Builds the guests of `npm run bench` with Debian's clang: bench/bench.wasm (the
# syscall loops) from bench/bench.c, bench/writes.wasm (the write-path rows) from bench/writes.c.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/wasi-toolchain.sh
for g in bench writes; do
  if [ ! -f "bench/$g.wasm" ] || [ "bench/$g.c" -nt "bench/$g.wasm" ]; then
    ensure_wasi_toolchain build-bench
    clang --target=wasm32-wasi -O2 -Wl,--strip-all -o "bench/$g.wasm" "bench/$g.c"
  fi
done
