#!/usr/bin/env bash
# Builds the durability tests' guests: every test/durability/guests/*.c into
# test/durability/guests/build/<name>.wasm. Same options as build-wasi.sh
# (--force, --check); per-program flags come from a "// cflags: ..." line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WASI_SRC="$ROOT/test/durability/guests" exec bash "$ROOT/scripts/build-wasi.sh" "$@"
