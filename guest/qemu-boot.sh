#!/usr/bin/env bash
# Developer check: boot the guest kernel under QEMU in software emulation
# (TCG, microvm, no ACPI) and verify what the minivmm boot test relies on.
# QEMU is a reference peer here, not a product dependency
# (apt-get install -y qemu-system-x86).
#
#   guest/qemu-boot.sh [--kernel PATH] [--exit-status N] [--disk IMG]... [--smp N]
#                      [--mem MiB] [--append "extra cmdline"] [--timeout S]
#
# Checks: the "Linux version" banner and "minivmm-agent: late init reached";
# with --disk, a "vdX:" partition-scan line per disk; with --exit-status N,
# that the agent's OUT to port 0x4f0 ended QEMU (isa-debug-exit exits with
# (N << 1) | 1). Prints the boot wall time. The console log is kept in a
# temporary file whose path is printed.
set -euo pipefail

kernel=${MINIVMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minivmm}/guest/current/vmlinux
exit_status=-1
disks=()
smp=2
mem=128
extra=""
timeout_s=120

die() { printf 'qemu-boot: error: %s\n' "$*" >&2; exit 1; }

while (($#)); do
	case $1 in
	--kernel) kernel=$2; shift 2 ;;
	--exit-status) exit_status=$2; shift 2 ;;
	--disk) disks+=("$2"); shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--append) extra=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	*) die "unknown argument $1" ;;
	esac
done

command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (apt-get install -y qemu-system-x86)"
[[ -r $kernel ]] || die "kernel $kernel not found (run scripts/build-guest.sh)"

# microvm with acpi=off appends virtio_mmio.device=... for each virtio-mmio
# device itself (auto-kernel-cmdline); panic=-1 + -no-reboot end QEMU when
# there is no root file system after the agent ran.
cmdline="console=ttyS0 panic=-1 minivmm_agent.exit_status=$exit_status $extra"
args=(-accel tcg -M microvm,acpi=off -cpu max -smp "$smp" -m "$mem"
	-global virtio-mmio.force-legacy=false
	-kernel "$kernel" -append "$cmdline"
	-device isa-debug-exit,iobase=0x4f0,iosize=4
	-nographic -no-reboot -nodefaults -serial stdio)
for i in "${!disks[@]}"; do
	args+=(-drive "file=${disks[$i]},if=none,id=d$i,format=raw"
		-device "virtio-blk-device,drive=d$i")
done

log=$(mktemp /tmp/qemu-boot.XXXXXX.log)
start=$(date +%s.%N)
set +e
timeout "$timeout_s" qemu-system-x86_64 "${args[@]}" </dev/null >"$log" 2>&1
qemu_rc=$?
set -e
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
printf 'qemu-boot: QEMU exited with %d after %.2fs; console log: %s\n' "$qemu_rc" "$elapsed" "$log"

failures=()
expect() { grep -qE -- "$1" "$log" || failures+=("console lacks: $1"); }
expect 'Linux version 6\.1'
expect 'minivmm-agent: late init reached'
for i in "${!disks[@]}"; do
	dev=vd$(printf "\\x$(printf %x $((97 + i)))")
	expect " $dev:"
done
if ((exit_status >= 0)); then
	want=$((((exit_status << 1) | 1) & 0xff))
	((qemu_rc == want)) || failures+=("QEMU exit code $qemu_rc, expected $want from isa-debug-exit")
fi
((qemu_rc != 124)) || failures+=("timed out after ${timeout_s}s")

if ((${#failures[@]})); then
	printf 'qemu-boot: FAIL\n' >&2
	printf '  %s\n' "${failures[@]}" >&2
	tail -n 20 "$log" >&2
	exit 1
fi
printf 'qemu-boot: OK\n'
