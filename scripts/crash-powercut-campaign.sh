#!/usr/bin/env bash
# Power-cut campaign: minivmm runs inside the nested-KVM sandbox
# with one disk per cache mode on the sandbox's ext4 scratch disk (kept across
# boots), the guest agent writing and flushing continuously; at a seeded moment
# the sandbox's QEMU is SIGKILLed (a power cut: its page cache is lost), the
# sandbox boots again on the same scratch disk (ext4 journal replay) and
# checks every image against its mode's power-loss promise, then the next
# round starts. --cuts N rounds, then a table per mode. Exit status 1 on any
# violation. Needs no /dev/kvm on this machine (the sandbox brings its own);
# about 1-2 min per cut on a 2-core machine.
#
# usage: scripts/crash-powercut-campaign.sh [--cuts N] [--seed S] [more options of
#          tests/crash/powercut_campaign.py: --window S --flush-every K --span N --multi N
#          --bug drop-dsync:writethrough|skip-flush:writeback --expect-violations MODES
#          --require-unsafe-loss --workdir DIR --keep]
# env: MINIVMM_BUILD_DIR (default build), MINIVMM_CACHE (guest kernel and sandbox cache)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/tests"  # the harness package, tests/framework

cuts=50
seed=1
extra=()
bug=0
while [ $# -gt 0 ]; do
  case "$1" in
    --cuts) cuts="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --bug) bug=1; extra+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done

build="${MINIVMM_BUILD_DIR:-build}"
minivmm="$build/vmm/minivmm"
kernel="${MINIVMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minivmm}/guest/current/vmlinux"
[ -x "$minivmm" ] || { echo "crash-powercut-campaign: $minivmm not built (scripts/build.sh)" >&2; exit 1; }
[ -f "$kernel" ] || { echo "crash-powercut-campaign: $kernel missing (scripts/build-guest.sh)" >&2; exit 1; }
if [ $bug = 1 ]; then
  cmake --build "$build" --target powercut_bug_shim >/dev/null
  extra+=(--shim "$build/tests/crash/powercut_bug_shim.so")
fi
exec python3 tests/crash/powercut_campaign.py "$minivmm" "$kernel" --cuts "$cuts" --seed "$seed" "${extra[@]}"
