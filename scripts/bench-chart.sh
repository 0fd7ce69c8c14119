#!/usr/bin/env bash
# Renders saved benchmark tables as one PNG (bench/chart.py): for each program
# and test row, minivmm's IOPS next to qemu-img bench's in each cache mode.
#   scripts/bench-chart.sh [storage.txt] [device.txt] [-o out.png]
# Files default to the latest outputs scripts/bench.sh saved
# ($MINIVMM_BENCH_OUT, default ~/.cache/minivmm/bench/{storage,device}-latest.txt),
# the PNG to docs/bench-chart.png. See bench/README.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
# Debian's interpreter: python3-matplotlib is in its dist-packages, which a
# pyenv or venv python3 earlier on PATH does not see. A later -o in "$@" wins.
exec /usr/bin/python3 "$root/bench/chart.py" -o "$root/docs/bench-chart.png" "$@"
