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
# Each stage prints "test.sh: STAGE took N s" on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each stage's wall time on stderr, so a CI log shows where the time went.
stage() {
  local name=$1 start=$SECONDS
  shift
  "$@"
  echo "test.sh: $name took $((SECONDS - start)) s" >&2
}

# CTest runs MINIVMM_CTEST_JOBS tests at a time (default: the CPU count).
# VM tests hold one lock (tests/CMakeLists.txt), so they still run one at a
# time, each keeping about one CPU busy; clang-tidy (lint.tidy, started
# first) then gets one job so the two fit on a 2-CPU machine.
jobs=${MINIVMM_CTEST_JOBS:-$(nproc)}
if [ "$jobs" -gt 1 ]; then
  export MINIVMM_LINT_JOBS=${MINIVMM_LINT_JOBS:-$((jobs - 1))}
fi

stage install-deps scripts/install-deps.sh
stage build scripts/build.sh
stage build-guest scripts/build-guest.sh >/dev/null
stage build-initramfs scripts/build-initramfs.sh >/dev/null
stage build-guest-distro scripts/build-guest.sh --flavour distro >/dev/null  # Debian guest (e2e.debian_*)
stage build-rootfs scripts/build-rootfs.sh >/dev/null
stage sandbox-prepare scripts/with-kvm.sh --prepare
run_ctest() { (cd "${MINIVMM_BUILD_DIR:-build}" && ctest -j "$jobs" --output-on-failure --timeout 1500 "$@"); }
run_fuzz() { scripts/fuzz-virtio.sh "${MINIVMM_FUZZ_SECONDS:-20}" 2>&1 | tail -n 8; }
stage ctest run_ctest "$@"
if [ $# -eq 0 ]; then
  stage fuzz run_fuzz
fi
