#!/usr/bin/env bash
# Fuzzes the virtqueue + virtio-blk request parser with libFuzzer for a
# bounded time, in a separate clang build (build-fuzz/).
# Usage: scripts/fuzz-virtio.sh [seconds (default 30)] [extra libFuzzer args...]
# Needs clang and libclang-rt-14-dev (apt-get install -y clang libclang-rt-14-dev).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-30}
shift || true
build=$root/build-fuzz
corpus=$build/virtio-corpus

command -v clang++ >/dev/null || { echo "clang++ not found: apt-get install -y clang libclang-rt-14-dev" >&2; exit 1; }

cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMINIVMM_FUZZ=ON >/dev/null
cmake --build "$build" --target virtio_blk_parser_fuzzer -j2

mkdir -p "$corpus"
exec "$build/tests/fuzz/virtio_blk_parser_fuzzer" "$corpus" -max_total_time="$seconds" \
  -max_len=66000 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@"
