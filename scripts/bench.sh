#!/usr/bin/env bash
# Builds and runs one benchmark program with the machine, load and peer
# versions printed around its table (see bench/README.md):
#   storage: minivmm's Disk alone, all five cache modes
#   device:  host-side virtio driver -> virtqueue -> VirtioBlk -> Disk
# Both compare with `qemu-img bench` (same file, offsets, depth, mode) and
# fio's io_uring ceiling in the same run. Extra arguments go to the program
# (--seconds S, --rounds N, --size-mib N, --flush-every N, --mode M, --engine sync|uring,
# --file PATH, --no-peers; device also --requests N). The image must live on
# a disk-backed filesystem (O_DIRECT fails on tmpfs).
# The whole output (what stdout shows) is also saved, outside the repository, as
# $MINIVMM_BENCH_OUT/<which>-<UTC date>.txt and copied to <which>-latest.txt
# (default ~/.cache/minivmm/bench) for scripts/bench-chart.sh.
set -euo pipefail
which=${1:?usage: scripts/bench.sh storage|device [args...]}
shift
case "$which" in
  storage|device) ;;
  *) echo "bench: unknown benchmark '$which' (storage or device)" >&2; exit 64 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${MINIVMM_BUILD_DIR:-$root/build-storage}"
for tool in qemu-img fio; do
  command -v "$tool" >/dev/null ||
    { echo "bench: $tool not installed (MINIVMM_BENCH_DEPS=1 scripts/install-deps.sh)" >&2; exit 1; }
done
cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" --target "${which}_bench" -j2 >/dev/null
saved_dir="${MINIVMM_BENCH_OUT:-$HOME/.cache/minivmm/bench}"
# device --same-thread and --driver-poll are saved apart (device-same-thread-*, device-poll-*).
case " $* " in
  *" --same-thread "*) name=$which-same-thread ;;
  *" --driver-poll "*) name=$which-poll ;;
  *) name=$which ;;
esac
saved="$saved_dir/$name-$(date -u +%Y%m%dT%H%M%SZ).txt"
mkdir -p "$saved_dir"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  host: $(uname -r), $(nproc) CPUs, $(findmnt -n -o SOURCE,FSTYPE -T /var/tmp)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)  peers: $(qemu-img --version | head -1), $(fio --version)"
  "$build/bench/${which}_bench" "$@"
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$saved.partial"
# Only a run that finished becomes <which>-<date>.txt and <which>-latest.txt.
mv "$saved.partial" "$saved"
cp "$saved" "$saved_dir/$name-latest.txt"
echo "bench: saved $saved (and $name-latest.txt)" >&2
