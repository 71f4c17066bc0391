#!/usr/bin/env bash
# Makes sure GNU time (/usr/bin/time) is installed: the attack tests measure the
# CLI's peak memory with it. Only Debian's packages are used.
set -euo pipefail
missing=()
for t in time; do
  [ -x "/usr/bin/$t" ] || missing+=("$t")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-test-tools: ${missing[*]} missing and this is not root; run: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "ensure-test-tools: installing Debian's ${missing[*]}" >&2
# A fresh machine has no package lists: update first if a package is unknown,
# and once more if the install fails with stale lists.
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
  [ -x "/usr/bin/$t" ] || { echo "ensure-test-tools: apt-get finished but /usr/bin/$t is missing" >&2; exit 1; }
done
