#!/usr/bin/env bash
# The whole test suite: install what is missing, build the VMM and the guest
# kernel, then run every CTest test (unit, device, boot, end-to-end) and a
# bounded fuzz run. Exit status is non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
scripts/build-guest.sh
cd "${MINIVMM_BUILD_DIR:-build}"
ctest --output-on-failure --timeout 1500 "$@"
