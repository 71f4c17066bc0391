#!/usr/bin/env bash
# Builds bench/bench.wasm (the guest of `npm run bench`) from bench/bench.c with Debian's clang.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang >/dev/null || [ ! -d /usr/lib/wasm32-wasi ]; then
  apt-get update -qq && apt-get install -y -qq clang lld wasi-libc libclang-rt-14-dev-wasm32 >/dev/null
fi
if [ ! -f bench/bench.wasm ] || [ bench/bench.c -nt bench/bench.wasm ]; then
  clang --target=wasm32-wasi -O2 -Wl,--strip-all -o bench/bench.wasm bench/bench.c
fi
