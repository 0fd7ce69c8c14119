#!/usr/bin/env bash
# Builds and runs the device-path benchmark: a host-side virtio driver ->
# virtqueue -> VirtioBlk -> storage::Disk on a file, in all five cache modes,
# vs `qemu-img bench` (same file, offsets, depth, mode) and fio's io_uring
# ceiling. Extra arguments go to device_bench (--seconds S, --size-mib N,
# --flush-every N, --mode M, --engine sync|uring, --file PATH, --no-peers).
# The image must live on a disk-backed filesystem (O_DIRECT fails on tmpfs).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${MINIVMM_BUILD_DIR:-$root/build-storage}"
for tool in qemu-img fio; do
  command -v "$tool" >/dev/null || { echo "bench-device: $tool not installed (apt-get install qemu-utils fio)" >&2; exit 1; }
done
cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" --target device_bench -j2 >/dev/null
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  host: $(uname -r), $(nproc) CPUs, $(findmnt -n -o SOURCE,FSTYPE -T /var/tmp)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)  peers: $(qemu-img --version | head -1), $(fio --version)"
"$build/bench/device_bench" "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
