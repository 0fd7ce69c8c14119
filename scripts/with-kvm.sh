#!/usr/bin/env bash
# Run a command that needs KVM where KVM can run it: natively when this
# machine's /dev/kvm can, otherwise inside the nested-KVM sandbox
# (scripts/nested-kvm.sh). Every VM-booting test and scripts/run.sh go through
# here, so the same commands work on all three kinds of machine:
#   hardware virtualization (VT-x/AMD-V)  everything natively
#   PVM /dev/kvm (kvm_pvm)                natively, except --hw-virt commands: those
#                                         need what PVM lacks (guest userspace cannot
#                                         make syscalls there; KVM_CAP_NR_VCPUS is 2)
#   no usable /dev/kvm                    everything in the sandbox
#
# usage: scripts/with-kvm.sh [--hw-virt] [--timeout S] [--quiet] [--] COMMAND [ARG...]
#        scripts/with-kvm.sh --prepare   (say where VM tests will run; build the
#                                         sandbox now, with progress, if any will use it)
# MINIVMM_KVM=host|nested|auto (default auto) forces the choice.
# Exit status: the command's; in the sandbox also 124 (timeout) and 125
# (infrastructure failure, retried once on a fresh sandbox boot).
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)

hw_virt=0 timeout=0 quiet=0 prepare=0
while [ $# -gt 0 ]; do
	case $1 in
	--prepare) prepare=1 ;;
	--hw-virt) hw_virt=1 ;;
	--timeout) timeout=$2; shift ;;
	--quiet) quiet=1 ;;
	--) shift; break ;;
	-*) echo "with-kvm: unknown option $1" >&2; exit 64 ;;
	*) break ;;
	esac
	shift
done
[ $# -gt 0 ] || [ $prepare = 1 ] || { echo "usage: with-kvm.sh [--hw-virt] [--timeout S] [--] COMMAND..." >&2; exit 64; }

# What this machine's /dev/kvm is: none, pvm or hardware (docs/nested-kvm.md).
kvm_kind() {
	if ! [ -c /dev/kvm ] || ! (exec 3<>/dev/kvm) 2>/dev/null; then
		echo none
	elif [ -d /sys/module/kvm_pvm ] || ! grep -q -m1 -w -E 'vmx|svm' /proc/cpuinfo; then
		echo pvm
	else
		echo hardware
	fi
}

mode=${MINIVMM_KVM:-auto}
kind=$(kvm_kind)
if [ "${MINIVMM_IN_NESTED_SANDBOX:-0}" = 1 ]; then
	mode=host # never nest a second level
fi
case $mode in
host | nested) why="MINIVMM_KVM=$mode" ;;
auto)
	case $kind in
	hardware) mode=host ;;
	pvm) if [ $hw_virt = 1 ]; then
		mode=nested why="/dev/kvm here is PVM; this needs hardware-virtualization semantics"
	else mode=host; fi ;;
	none) mode=nested why="no usable /dev/kvm on this machine" ;;
	esac ;;
*) echo "with-kvm: MINIVMM_KVM must be host, nested or auto (got '$mode')" >&2; exit 64 ;;
esac

if [ $prepare = 1 ]; then
	case "$mode/$kind" in
	host/*) echo "with-kvm: /dev/kvm here is $kind: VM tests run natively" \
		"$([ "$kind" = pvm ] && echo '(those that need hardware virtualization in the nested-KVM sandbox)')" >&2 ;;
	nested/*) echo "with-kvm: VM tests run in the nested-KVM sandbox ($why)" >&2 ;;
	esac
	if [ "$mode" = nested ] || [ "$kind" = pvm ]; then
		exec "$here/nested-kvm.sh" --build-only >/dev/null
	fi
	exit 0
fi

if [ "$mode" = host ]; then
	if [ "$timeout" != 0 ]; then
		exec timeout --kill-after=15 "$timeout" "$@"
	fi
	exec "$@"
fi
[ $quiet = 1 ] || echo "with-kvm: running in the nested-KVM sandbox ($why): $*" >&2
args=(--infra-retries 2)
[ "$timeout" != 0 ] && args+=(--timeout "$timeout")
exec "$here/nested-kvm.sh" "${args[@]}" -- "$@"
