# Sourced by the scripts that build committed .wasm files: makes sure Debian's
# clang can target wasm32-wasi, installing the packages when it cannot.
# Usage: . scripts/lib/wasi-toolchain.sh; ensure_wasi_toolchain <script name>
WASI_PKGS=(clang lld wasi-libc libclang-rt-14-dev-wasm32)

have_wasi_toolchain() {
  command -v clang >/dev/null 2>&1 || return 1
  # wasi-libc's sysroot and the wasm32 compiler-rt builtins.
  echo 'int main(void){return 0;}' | clang --target=wasm32-wasi -O2 -x c - -o /dev/null >/dev/null 2>&1
}

ensure_wasi_toolchain() {
  local who="${1:-build}"
  have_wasi_toolchain && return 0
  echo "$who: installing ${WASI_PKGS[*]}" >&2
  local SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y "${WASI_PKGS[@]}" >&2; then
    $SUDO apt-get update >&2
    $SUDO apt-get install -y "${WASI_PKGS[@]}" >&2
  fi
  have_wasi_toolchain || { echo "$who: clang --target=wasm32-wasi still does not work" >&2; exit 1; }
}
