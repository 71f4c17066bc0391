#!/usr/bin/env bash
# Builds every test/wasi/*.c into test/wasi/build/<name>.wasm (or, with
# WASI_SRC=DIR, every DIR/*.c into DIR/build/<name>.wasm: scripts/build-attack.sh).
#
#   scripts/build-wasi.sh            rebuild what is stale (a .c or common.h
#                                    newer than its .wasm, or a missing .wasm)
#   scripts/build-wasi.sh --force    rebuild everything
#   scripts/build-wasi.sh --check    build everything into a temp dir and
#                                    compare sha256 with test/wasi/build/
#                                    (exit 1 on any difference); writes nothing
#
# Compiler: Debian's clang 14 + wasi-libc (`clang --target=wasm32-wasi -O2`).
# When a build is needed and clang or wasi-libc is missing, the Debian packages
# are installed (apt-get update first if the package lists are empty).
#
# The .wasm files are committed, so builds must be reproducible: no debug info
# (no paths), sources passed by a path relative to test/wasi, and
# -ffile-prefix-map for good measure. `--check` verifies this.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="${WASI_SRC:-$ROOT/test/wasi}"
OUT="$SRC/build"

mode=stale
case "${1:-}" in
  "") ;;
  --force) mode=force ;;
  --check) mode=check ;;
  -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
  *) echo "build-wasi: unknown option $1" >&2; exit 2 ;;
esac

# Extra flags per program, from a line "// cflags: ..." in its source (e.g. a
# wasi-libc emulation, or -Wl,--max-memory=4294967296 for a 4 GiB guest).
extra_flags() {
  sed -n 's|^// cflags: *||p' "$SRC/$1.c" | head -n 1
}

CFLAGS=(--target=wasm32-wasi -O2 -Wall -Wl,--strip-debug -ffile-prefix-map="$SRC"=. -fdebug-prefix-map="$SRC"=.)

. "$(dirname "${BASH_SOURCE[0]}")/lib/wasi-toolchain.sh"
ensure_toolchain() { ensure_wasi_toolchain build-wasi; }

compile() { # <name> <output path>
  local name="$1" out="$2"
  # shellcheck disable=SC2046
  (cd "$SRC" && clang "${CFLAGS[@]}" $(extra_flags "$name") -o "$out" "$name.c")
}

shopt -s nullglob
sources=("$SRC"/*.c)
if [ ${#sources[@]} -eq 0 ]; then echo "build-wasi: no sources in $SRC" >&2; exit 1; fi

if [ "$mode" = check ]; then
  ensure_toolchain
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  bad=0
  for c in "${sources[@]}"; do
    name="$(basename "$c" .c)"
    compile "$name" "$tmp/$name.wasm"
    want="$(sha256sum "$tmp/$name.wasm" | cut -d' ' -f1)"
    have="$( [ -f "$OUT/$name.wasm" ] && sha256sum "$OUT/$name.wasm" | cut -d' ' -f1 || echo missing)"
    if [ "$want" = "$have" ]; then
      echo "same  $name.wasm $want"
    else
      echo "DIFF  $name.wasm built=$want committed=$have"
      bad=1
    fi
  done
  exit $bad
fi

mkdir -p "$OUT"
stale=()
for c in "${sources[@]}"; do
  name="$(basename "$c" .c)"
  w="$OUT/$name.wasm"
  if [ "$mode" = force ] || [ ! -f "$w" ] || [ "$c" -nt "$w" ] || { [ -f "$SRC/common.h" ] && [ "$SRC/common.h" -nt "$w" ]; }; then
    stale+=("$name")
  fi
done
if [ ${#stale[@]} -eq 0 ]; then
  echo "build-wasi: up to date"
  exit 0
fi
ensure_toolchain
for name in "${stale[@]}"; do
  # Write to a temp name first so an interrupted build leaves no partial .wasm.
  compile "$name" "$OUT/.$name.wasm.tmp"
  chmod 644 "$OUT/.$name.wasm.tmp" # wasm-ld marks its output executable
  mv -f "$OUT/.$name.wasm.tmp" "$OUT/$name.wasm"
  echo "built ${OUT#"$ROOT"/}/$name.wasm"
done
