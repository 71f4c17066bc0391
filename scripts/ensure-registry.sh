#!/usr/bin/env bash
# Makes sure Debian's docker-registry is installed for the registry tests
# (test/registry.test.ts). Only Debian's package is used.
set -euo pipefail
[ -x /usr/bin/docker-registry ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-registry: docker-registry missing and this is not root; run: apt-get install -y docker-registry" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "ensure-registry: installing Debian's docker-registry" >&2
apt-cache show docker-registry >/dev/null 2>&1 || apt-get update -q >&2
if ! apt-get install -y -q --no-install-recommends docker-registry >&2; then
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends docker-registry >&2
fi
[ -x /usr/bin/docker-registry ] || { echo "ensure-registry: apt-get finished but /usr/bin/docker-registry is missing" >&2; exit 1; }
