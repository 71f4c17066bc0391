#!/usr/bin/env bash
# Builds examples/toolbox/toolbox.c into examples/toolbox/toolbox.wasm, the
# multi-call file utilities (ls, cat, cp, grep, ...) of the playground image.
#
#   scripts/build-toolbox.sh            rebuild when toolbox.c (or this script)
#                                       is newer than toolbox.wasm, or it is
#                                       missing
#   scripts/build-toolbox.sh --force    rebuild
#   scripts/build-toolbox.sh --check    build twice into a temp dir and compare
#                                       sha256 with each other and with the
#                                       committed toolbox.wasm (exit 1 on any
#                                       difference); writes nothing
#
# Same approach as scripts/build-wasi.sh: Debian's clang 14 + wasi-libc,
# installed when missing. The .wasm is committed, so the build must be
# reproducible: no debug info or names (--strip-all), the source passed by a
# path relative to examples/toolbox, -ffile-prefix-map for good measure.
# Size flags: -Oz, and printf without floating point (the toolbox prints none).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/examples/toolbox"
OUT="$SRC/toolbox.wasm"
SELF="$ROOT/scripts/build-toolbox.sh"

mode=stale
case "${1:-}" in
  "") ;;
  --force) mode=force ;;
  --check) mode=check ;;
  -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
  *) echo "build-toolbox: unknown option $1" >&2; exit 2 ;;
esac

CFLAGS=(--target=wasm32-wasi -Oz -Wall -Wextra -Wl,--strip-all
  -ffile-prefix-map="$SRC"=. -fdebug-prefix-map="$SRC"=.)
LIBS=(-lc-printscan-no-floating-point)

. "$(dirname "${BASH_SOURCE[0]}")/lib/wasi-toolchain.sh"
ensure_toolchain() { ensure_wasi_toolchain build-toolbox; }

compile() { # <output path>
  (cd "$SRC" && clang "${CFLAGS[@]}" -o "$1" toolbox.c "${LIBS[@]}")
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

if [ "$mode" = check ]; then
  ensure_toolchain
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  compile "$tmp/a.wasm"
  compile "$tmp/b.wasm"
  a="$(sha "$tmp/a.wasm")"
  b="$(sha "$tmp/b.wasm")"
  have="$( [ -f "$OUT" ] && sha "$OUT" || echo missing)"
  if [ "$a" != "$b" ]; then
    echo "DIFF  two builds differ: $a $b"
    exit 1
  fi
  if [ "$a" != "$have" ]; then
    echo "DIFF  toolbox.wasm built=$a committed=$have"
    exit 1
  fi
  echo "same  toolbox.wasm $a ($(wc -c <"$tmp/a.wasm") bytes)"
  exit 0
fi

if [ "$mode" = stale ] && [ -f "$OUT" ] && [ ! "$SRC/toolbox.c" -nt "$OUT" ] && [ ! "$SELF" -nt "$OUT" ]; then
  echo "build-toolbox: up to date"
  exit 0
fi
ensure_toolchain
# Write to a temp name first so an interrupted build leaves no partial .wasm.
compile "$SRC/.toolbox.wasm.tmp"
chmod 644 "$SRC/.toolbox.wasm.tmp" # wasm-ld marks its output executable
mv -f "$SRC/.toolbox.wasm.tmp" "$OUT"
echo "built examples/toolbox/toolbox.wasm ($(wc -c <"$OUT") bytes)"
