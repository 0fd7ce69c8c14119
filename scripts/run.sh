#!/usr/bin/env bash
# The main job: install what is missing, build the VMM and the guest kernel,
# then boot configs/default.toml with the guest console on this terminal.
# Extra arguments go to minivmm (e.g. --config configs/writeback.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
scripts/build-guest.sh
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--config configs/default.toml)
exec "${MINIVMM_BUILD_DIR:-build}/vmm/minivmm" "${args[@]}"
