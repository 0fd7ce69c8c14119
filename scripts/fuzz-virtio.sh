#!/usr/bin/env bash
# Fuzzes the guest-facing virtio-blk code with libFuzzer + ASan/UBSan, in a
# separate clang build (build-fuzz/), each target for a bounded time:
#   virtio_blk_parser  split virtqueue + request parser over fuzzer-chosen RAM
#   virtio_blk_device  virtio-mmio transport + VirtioBlk over a fake disk,
#                      driven by register writes, ring and memory changes
#   api_request        the control API's HTTP parser and router (opt-in:
#                      FUZZ_TARGETS=api)
# Each run starts from the target's built-in seeds (tests/fuzz/*_seeds.cpp)
# plus the corpus earlier runs grew (build-fuzz/corpus-TARGET).
#
# Usage: scripts/fuzz-virtio.sh [seconds per target (default 30; 0 = no limit)] [libFuzzer args...]
#   FUZZ_TARGETS="parser device"   which targets (default both; "api" too)
#   MINIVMM_FUZZ_BUILD_DIR=DIR     build directory (default build-fuzz)
# The 10^7-execution run (each target, ASan/UBSan, no time limit):
#   scripts/fuzz-virtio.sh 0 -runs=10000000
# On several cores, more libFuzzer processes may share the corpus directory
# (build-fuzz/corpus-TARGET); their executions add up (docs/virtio-blk.md).
# Needs clang and libclang-rt-14-dev (apt-get install -y clang libclang-rt-14-dev).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-30}
shift || true
build=${MINIVMM_FUZZ_BUILD_DIR:-$root/build-fuzz}
targets=${FUZZ_TARGETS:-parser device}

command -v clang++ >/dev/null || { echo "clang++ not found: apt-get install -y clang libclang-rt-14-dev" >&2; exit 1; }

cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMINIVMM_FUZZ=ON >/dev/null
build_targets=()
target_name() { if [ "$1" = api ]; then echo api_request; else echo "virtio_blk_$1"; fi; }
for t in $targets; do build_targets+=("$(target_name "$t")_fuzzer" "$(target_name "$t")_replay"); done
cmake --build "$build" --target "${build_targets[@]}" -j2 >/dev/null

status=0
for t in $targets; do
  name=$(target_name "$t")
  seeds=$build/seeds-$t corpus=$build/corpus-$t log=$build/$name.log
  mkdir -p "$seeds" "$corpus"
  "$build/tests/fuzz/${name}_replay" --write-seeds "$seeds" >/dev/null
  max_len=4096
  [ "$t" = parser ] && max_len=66000
  [ "$t" = api ] && max_len=70000
  limit=()
  [ "$seconds" != 0 ] && limit=(-max_total_time="$seconds")
  if ! "$build/tests/fuzz/${name}_fuzzer" "$corpus" "$seeds" "${limit[@]}" -max_len=$max_len \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@" >"$log" 2>&1; then
    echo "$name: FINDING (see $log)"
    tail -n 30 "$log"
    status=1
    continue
  fi
  # Final line of progress (#runs cov ft) and the executions done.
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -E 's/^#([0-9]+)\s+\w+\s+/runs=\1 /')
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  echo "$name: no finding; executions=$execs; $last (log: $log)"
done
exit $status
