#!/usr/bin/env bash
# The whole test suite: install what is missing, build the VMM and the guest
# kernel, run every CTest test (unit, device, boot, end-to-end, crash), then a
# bounded libFuzzer run of the virtio-blk request parser. Exit status is
# non-zero if anything failed. Extra arguments go to ctest (e.g. -L boot).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
scripts/build-guest.sh >/dev/null
(cd "${MINIVMM_BUILD_DIR:-build}" && ctest --output-on-failure --timeout 1500 "$@")
if [ $# -eq 0 ]; then
  scripts/fuzz-virtio.sh "${MINIVMM_FUZZ_SECONDS:-20}" 2>&1 | tail -n 8
fi
