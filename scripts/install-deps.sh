#!/usr/bin/env bash
# Installs the Debian packages minivmm needs to build, boot its guest and run
# its tests. Idempotent: does nothing (and needs no network) when all are there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config            # toolchain
  linux-libc-dev liburing-dev libtomlplusplus-dev libspdlog-dev libgtest-dev libseccomp-dev  # libraries
  nlohmann-json3-dev                           # control API JSON bodies (vmm/api/)
  linux-source-6.1 flex bison bc libelf-dev libssl-dev xz-utils lz4  # guest kernel build
  python3                                      # test drivers
  python3-matplotlib                           # scripts/bench-chart.sh (bench/chart.py)
  busybox-static cpio                          # interactive initramfs (scripts/build-initramfs.sh)
  debootstrap                                  # Debian guest root image (scripts/build-rootfs.sh)
  qemu-system-x86 kmod e2fsprogs apt dpkg      # nested-KVM sandbox (scripts/nested-kvm.sh)
  clang libclang-rt-14-dev                     # libFuzzer target
  clang-format clang-tidy                      # scripts/lint.sh (ctest lint.format)
  shellcheck python3-pyflakes                  # scripts/lint.sh (ctest lint.shellcheck, lint.python)
  prometheus                                   # promtool: the API's /metrics test
  qemu-utils                                   # qemu-img: images of other formats in the format tests
)
optional=(fio)                                 # benchmark peer (bench/ only)

want=("${packages[@]}")
[ "${MINIVMM_BENCH_DEPS:-0}" = 1 ] && want+=("${optional[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
