#!/usr/bin/env bash
# Makes sure GNU time (/usr/bin/time) is installed: the attack tests measure the
# CLI's peak memory with it. Only Debian's packages are used.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/debian-packages.sh"
ensure_debian_packages ensure-test-tools time
