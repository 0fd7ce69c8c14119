#!/usr/bin/env bash
# The minivmm binary loads no C++ shared library (vmm/CMakeLists.txt: static
# libstdc++/libgcc; spdlog, fmt and toml++ header-only). Each one it loaded
# would be resident memory beside guest RAM: a shared libstdc++ was the
# largest part of it (bench/README.md).
set -euo pipefail
bin=${1:?usage: binary_links_test.sh MINIVMM}
libs=$(ldd "$bin")
echo "$libs"
if grep -E 'lib(stdc\+\+|gcc_s|spdlog|fmt|tomlplusplus)\.so' <<<"$libs"; then
  echo "FAIL: $bin loads the C++ shared libraries above" >&2
  exit 1
fi
echo "PASS: no C++ shared library"
