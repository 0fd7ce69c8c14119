#!/usr/bin/env bash
# Power-loss simulation over a real guest run.
#
# For each cache mode: a fresh zeroed image (or a copy of --image), a copy of
# it as the base, one minivmm run with the disk's write log on, then
# tests/framework/powerloss_check.py on the log: it rebuilds every state a power
# cut could leave and checks the mode's promise (unsafe: reports what would
# be lost), and checks the image left behind against the process-kill promise.
#
# Any guest works: the run ends when the guest ends the VM, or after
# --timeout seconds with SIGTERM (a graceful stop: drain + final flush).
# The default guest command line runs the agent's disk workload
# (guest/agent/workload.c); replace it with --cmdline.
#
# usage: scripts/crash-powerloss.sh [--modes "writeback none ..."] [--image FILE]
#          [--size-mib N] [--timeout S] [--cmdline STRING] [--out DIR]
#          [-- extra minivmm args, e.g. --kernel PATH or --config FILE]
# env: MINIVMM_BUILD_DIR (default build), MINIVMM_CACHE (guest kernel cache)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/tests"  # the harness package, tests/framework

modes="writeback none writethrough directsync unsafe"
image=""
size_mib=16
timeout_s=600
cmdline="console=ttyS0 reboot=k panic=-1 minivmm_agent.writes=24 minivmm_agent.flush_every=4 minivmm_agent.toggle_wce=1 minivmm_agent.exit_status=0"
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --modes) modes="$2"; shift 2 ;;
    --image) image="$2"; shift 2 ;;
    --size-mib) size_mib="$2"; shift 2 ;;
    --timeout) timeout_s="$2"; shift 2 ;;
    --cmdline) cmdline="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n 2,19p "$0"; exit 0 ;;
    *) echo "crash-powerloss: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done
extra=("$@")

build="${MINIVMM_BUILD_DIR:-build}"
minivmm="$build/vmm/minivmm"
[ -x "$minivmm" ] || { echo "crash-powerloss: $minivmm not built (scripts/build.sh)" >&2; exit 1; }
kernel_args=()
if ! printf '%s\n' "${extra[@]}" | grep -qE '^(--kernel|--config|-c)$'; then
  kernel_args=(--kernel "${MINIVMM_CACHE:-$HOME/.cache/minivmm}/guest/current/vmlinux")
fi
# O_DIRECT needs a disk-backed directory, not tmpfs.
out="${out:-$(mktemp -d /var/tmp/minivmm-powerloss.XXXXXX)}"
mkdir -p "$out"

failed=0
for mode in $modes; do
  img="$out/$mode.img" base="$out/$mode.base" log="$out/$mode.wlog"
  if [ -n "$image" ]; then cp --sparse=always "$image" "$img"; else
    rm -f "$img"; truncate -s "${size_mib}M" "$img"; fi
  cp --sparse=always "$img" "$base"
  echo "== cache=$mode: running the guest (log: $log)"
  set +e
  timeout --signal=TERM --kill-after=60 "$timeout_s" "$minivmm" "${kernel_args[@]}" "${extra[@]}" \
    --no-stdin --cmdline "$cmdline" --disk "$img,cache=$mode,write_log=$log" \
    > "$out/$mode.console" 2> "$out/$mode.vmm.log"
  rc=$?
  set -e
  echo "   minivmm exit code $rc (console: $out/$mode.console)"
  if python3 -m framework.powerloss_check "$log" "$base" --image-after "$img" | sed 's/^/   /'; then
    echo "   cache=$mode: promise kept"
  else
    echo "   cache=$mode: VIOLATIONS (see above)"; failed=1
  fi
done
echo "logs and images in $out"
exit $failed
