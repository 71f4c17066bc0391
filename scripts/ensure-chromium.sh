#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium for the browser tests.
# Only Debian's package is used: no tool may download a browser of its own.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-chromium: /usr/bin/chromium is missing and this is not root; run: apt-get install -y chromium" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "ensure-chromium: installing Debian's chromium" >&2
# A fresh machine has no package lists: update first if chromium is unknown,
# and once more if the install fails with stale lists.
if ! apt-cache show chromium >/dev/null 2>&1; then
  apt-get update -q >&2
fi
if ! apt-get install -y -q chromium >&2; then
  apt-get update -q >&2
  apt-get install -y -q chromium >&2
fi
[ -x /usr/bin/chromium ] || { echo "ensure-chromium: apt-get finished but /usr/bin/chromium is missing" >&2; exit 1; }
