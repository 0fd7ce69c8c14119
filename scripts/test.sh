#!/usr/bin/env bash
# The whole test suite: install what is missing, build the VMM, the guest
# kernel and the busybox initramfs, run every CTest test (unit, device, boot,
# end-to-end, crash), then a bounded libFuzzer run of the virtio-blk request
# parser. Exit status is non-zero if anything failed. Extra arguments go to
# ctest (e.g. -L boot).
#
# VM-booting tests (label vm) run through scripts/with-kvm.sh: natively where
# this machine's /dev/kvm can run them, in the nested-KVM sandbox where it
# cannot; none is skipped. MINIVMM_KVM=host|nested forces the choice.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
scripts/build-guest.sh >/dev/null
scripts/build-initramfs.sh >/dev/null
scripts/build-guest.sh --flavour distro >/dev/null  # Debian guest (e2e.debian_*)
scripts/build-rootfs.sh >/dev/null
scripts/with-kvm.sh --prepare
(cd "${MINIVMM_BUILD_DIR:-build}" && ctest --output-on-failure --timeout 1500 "$@")
if [ $# -eq 0 ]; then
  scripts/fuzz-virtio.sh "${MINIVMM_FUZZ_SECONDS:-20}" 2>&1 | tail -n 8
fi
