#!/usr/bin/env bash
# Makes sure Debian's skopeo and umoci are installed for the OCI interop tests
# (test/oci.test.ts). Only Debian's packages are used.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/debian-packages.sh"
ensure_debian_packages ensure-oci-tools skopeo umoci
