#!/usr/bin/env bash
# Builds test/fixtures/sqlite3.wasm: the SQLite shell (shell.c + sqlite3.c)
# for wasm32-wasi (a WASI preview1 command), -O2.
#
# The sources are the amalgamation inside the `sqlite3` npm package's tarball
# (deps/sqlite-autoconf-*.tar.gz), fetched with `npm pack` into a temp dir.
# Skips the build when the wasm is newer than this script and the stubs;
# `--force` rebuilds anyway. Installs clang/lld/wasi-libc with apt-get when
# they are missing (needs root). Compiling sqlite3.c takes about 25 s.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
script="$root/scripts/build-sqlite.sh"
stubs="$root/test/fixtures/sqlite-stubs.c"
out="$root/test/fixtures/sqlite3.wasm"
# The npm package the amalgamation comes from; pinned so rebuilds are repeatable.
pkg="sqlite3@${SQLITE3_NPM_VERSION:-6.0.1}"

if [[ "${1:-}" != "--force" && -f "$out" && "$out" -nt "$script" && "$out" -nt "$stubs" ]]; then
  echo "build-sqlite: $out is up to date"
  exit 0
fi

# The toolchain: clang 14 with the wasm32 builtins, wasm-ld, Debian's wasi-libc.
if ! echo 'int main(void){return 0;}' | clang --target=wasm32-wasi -x c -o /dev/null - >/dev/null 2>&1; then
  if [[ "$(id -u)" != 0 ]]; then
    echo "build-sqlite: clang for wasm32-wasi is missing; run as root or: apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32" >&2
    exit 1
  fi
  echo "build-sqlite: installing clang, lld, wasi-libc"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang lld wasi-libc libclang-rt-14-dev-wasm32 >/dev/null
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/build-sqlite.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "build-sqlite: fetching $pkg"
(cd "$work" && npm pack --silent "$pkg" >/dev/null 2>&1)
tar -xzf "$work"/sqlite3-*.tgz -C "$work" --wildcards 'package/deps/sqlite-autoconf-*.tar.gz'
autoconf="$(ls "$work"/package/deps/sqlite-autoconf-*.tar.gz | head -n1)"
tar -xzf "$autoconf" -C "$work" --wildcards '*/shell.c' '*/sqlite3.c' '*/sqlite3.h'
src="$(dirname "$(ls "$work"/sqlite-autoconf-*/sqlite3.c | head -n1)")"
echo "build-sqlite: compiling $(basename "$src") (about 25 s)"

flags=(--target=wasm32-wasi -O2
  -D_WASI_EMULATED_MMAN -D_WASI_EMULATED_GETPID -D_WASI_EMULATED_SIGNAL -D_WASI_EMULATED_PROCESS_CLOCKS
  -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_WAL -DSQLITE_NOHAVE_SYSTEM
  -I "$src" -ffile-prefix-map="$work"=.)
# -ffile-prefix-map keeps the temp dir out of __FILE__ strings, so rebuilds are byte-identical.
# The two translation units in parallel; the stubs go into shell.c (see sqlite-stubs.c).
clang "${flags[@]}" -c -o "$work/sqlite3.o" "$src/sqlite3.c" &
lib=$!
clang "${flags[@]}" -c -o "$work/shell.o" -include "$stubs" "$src/shell.c"
wait "$lib"
clang --target=wasm32-wasi -O2 -o "$work/sqlite3.wasm" "$work/shell.o" "$work/sqlite3.o" \
  -lwasi-emulated-mman -lwasi-emulated-getpid -lwasi-emulated-signal -lwasi-emulated-process-clocks \
  -Wl,--strip-debug

mv "$work/sqlite3.wasm" "$out"
echo "build-sqlite: wrote $out ($(stat -c %s "$out") bytes)"
