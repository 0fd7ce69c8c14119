#!/usr/bin/env bash
# minivmm and QEMU (-accel kvm) side by side with the same Debian guest, in one
# boot of the nested-KVM sandbox where this machine has no hardware
# virtualization (scripts/with-kvm.sh --hw-virt; MINIVMM_KVM=nested forces the
# sandbox). Builds what is missing first: minivmm (its target only, into $MINIVMM_BUILD_DIR), the
# distro guest kernel (scripts/build-guest.sh --flavour distro) and the Debian
# root image (scripts/build-rootfs.sh); all caches under ~/.cache/minivmm.
# Extra arguments go to bench/vs_qemu.py (--runs N, --seconds S, --memory MiB,
# --vcpus N, --disk-mib N). Method and results: bench/README.md.
# Environment: MINIVMM_BUILD_DIR (default build), MINIVMM_CACHE,
# MINIVMM_VS_QEMU_TIMEOUT (seconds for the whole run inside the sandbox, default 3600).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd -P)"
build="${MINIVMM_BUILD_DIR:-build}"
cache="${MINIVMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minivmm}"
for tool in qemu-system-x86_64 python3; do
	command -v "$tool" >/dev/null ||
		{ echo "bench-vs-qemu: $tool not installed (MINIVMM_BENCH_DEPS=1 scripts/install-deps.sh, or apt-get install qemu-system-x86)" >&2; exit 1; }
done
cd "$root"
export PYTHONPATH="$root/tests"  # the harness package, tests/framework (cache mode names)
[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target minivmm -j2 >/dev/null
scripts/build-guest.sh --flavour distro >/dev/null
scripts/build-rootfs.sh >/dev/null
echo "host: $(uname -r), $(nproc) CPUs, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
logs="$cache/vs-qemu/$(date -u +%Y%m%dT%H%M%SZ)"
rc=0
scripts/with-kvm.sh --hw-virt --timeout "${MINIVMM_VS_QEMU_TIMEOUT:-3600}" -- \
	python3 bench/vs_qemu.py "$build/vmm/minivmm" "$cache/guest/current-distro/vmlinux" \
	"$cache/rootfs/current/debian.img" --log-dir "$logs" "$@" || rc=$?
echo "consoles, VMM logs and QEMU traces: $logs"
echo "host load after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $rc
