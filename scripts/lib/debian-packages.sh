# ensure_debian_packages WHO PACKAGE... : installs each Debian PACKAGE whose
# /usr/bin/PACKAGE is missing (apt-get update first when the package lists
# do not know it, and once more if the install fails with stale lists).
# Only Debian's packages are used; WHO names the caller in messages.
ensure_debian_packages() {
  local who="$1" t
  shift
  local missing=()
  for t in "$@"; do
    [ -x "/usr/bin/$t" ] || missing+=("$t")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "$who: ${missing[*]} missing and this is not root; run: apt-get install -y ${missing[*]}" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "$who: installing Debian's ${missing[*]}" >&2
  for t in "${missing[@]}"; do
    if ! apt-cache show "$t" >/dev/null 2>&1; then
      apt-get update -q >&2
      break
    fi
  done
  if ! apt-get install -y -q "${missing[@]}" >&2; then
    apt-get update -q >&2
    apt-get install -y -q "${missing[@]}" >&2
  fi
  for t in "${missing[@]}"; do
    [ -x "/usr/bin/$t" ] || { echo "$who: apt-get finished but /usr/bin/$t is missing" >&2; return 1; }
  done
}
