#!/usr/bin/env bash
# Builds minivmm (CMake, into build/). Incremental: fast when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${MINIVMM_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD_DIR" -j"$(nproc)"
