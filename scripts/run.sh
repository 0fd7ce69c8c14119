#!/usr/bin/env bash
# The main job: install what is missing, build the VMM and the guest kernel,
# then boot configs/default.toml with the guest console on this terminal.
# Extra arguments go to minivmm (e.g. --config configs/writeback.toml).
# Where this machine has no usable /dev/kvm the VM runs in the nested-KVM
# sandbox (scripts/with-kvm.sh says so before it starts; MINIVMM_KVM=host|nested
# forces the choice).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
scripts/build-guest.sh
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--config configs/default.toml)
exec scripts/with-kvm.sh -- "${MINIVMM_BUILD_DIR:-build}/vmm/minivmm" "${args[@]}"
