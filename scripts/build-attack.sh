#!/usr/bin/env bash
# Builds the attack suite's hostile guests: every test/attack/guests/*.c into
# test/attack/guests/build/<name>.wasm. Same options as build-wasi.sh
# (--force, --check); per-program flags come from a "// cflags: ..." line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WASI_SRC="$ROOT/test/attack/guests" exec bash "$ROOT/scripts/build-wasi.sh" "$@"
