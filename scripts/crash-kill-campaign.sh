#!/usr/bin/env bash
# Kill campaign: one VM with a disk per cache mode, the
# guest agent writing and flushing continuously, minivmm SIGKILLed at a seeded
# random moment, every image checked against the process-kill promise, the
# images booted again. Repeats for --kills rounds on the same images (a new
# generation each round), then prints a table per mode. Exit status 1 on any
# violation. Takes about 20-30 s per kill on the PVM dev machine. --multi N
# (default 4): records per write bio, so kills land in N-segment requests.
#
# usage: scripts/crash-kill-campaign.sh [--kills N] [--seed S] [--multi N] [more options of
#          tests/crash/kill_campaign.py: --window S --flush-every K --span N --workdir DIR --keep]
# env: MINIVMM_BUILD_DIR (default build), MINIVMM_CACHE (guest kernel cache)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/tests"  # the harness package, tests/framework

kills=50
seed=1
multi=4
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kills) kills="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --multi) multi="$2"; shift 2 ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done

minivmm="${MINIVMM_BUILD_DIR:-build}/vmm/minivmm"
kernel="${MINIVMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minivmm}/guest/current/vmlinux"
[ -x "$minivmm" ] || { echo "crash-kill-campaign: $minivmm not built (scripts/build.sh)" >&2; exit 1; }
[ -f "$kernel" ] || { echo "crash-kill-campaign: $kernel missing (scripts/build-guest.sh)" >&2; exit 1; }
exec python3 tests/crash/kill_campaign.py "$minivmm" "$kernel" --kills "$kills" --seed "$seed" --multi "$multi" "${extra[@]}"
