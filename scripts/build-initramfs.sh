#!/usr/bin/env bash
# Build a tiny busybox initramfs for interactive guests: /init mounts devtmpfs,
# proc and sysfs and runs a shell on the console (ttyS0).
#
# Works only where guest userspace can make system calls: hosts with hardware
# virtualization (VT-x/AMD-V). On PVM /dev/kvm (our project machines) every
# syscall from guest userspace faults, so /init dies at its first syscall
# (docs/nested-kvm.md); use the in-kernel agent there.
#
# Output (stdout prints only its path):
#   ${MINIVMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minivmm}/guest/initramfs.cpio.gz
# Needs Debian's busybox-static, cpio and gzip.
set -euo pipefail

readonly BUSYBOX=/bin/busybox
CACHE_ROOT=$(readlink -m -- "${MINIVMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minivmm}/guest")
readonly CACHE_ROOT OUT=$CACHE_ROOT/initramfs.cpio.gz

die() { printf 'build-initramfs: error: %s\n' "$*" >&2; exit 1; }

dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' ||
	die "Debian package busybox-static is missing: apt-get install -y busybox-static"
command -v cpio >/dev/null || die "cpio not found: apt-get install -y cpio"
# The guest kernel has no module loader or dynamic linker: the binary must be static.
file_type=$(od -An -c -N4 "$BUSYBOX" | tr -d ' ')
[[ $file_type == 177ELF ]] || die "$BUSYBOX is not an ELF binary"
if LC_ALL=C readelf -l "$BUSYBOX" 2>/dev/null | grep -q 'INTERP'; then
	die "$BUSYBOX is dynamically linked; install busybox-static"
fi

stage=$(mktemp -d)
trap 'rm -rf -- "$stage"' EXIT
mkdir -p -- "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root}
cp -- "$BUSYBOX" "$stage/bin/busybox"
cat >"$stage/init" <<'INIT'
#!/bin/busybox sh
# minivmm interactive initramfs (scripts/build-initramfs.sh)
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# The kernel opened /dev/console before devtmpfs was mounted here only if the
# archive had the node; take the console explicitly either way.
exec 0</dev/console 1>/dev/console 2>&1
echo "minivmm initramfs: busybox $(busybox | head -n1 | cut -d' ' -f2) shell on the console."
echo "Disks: $(ls /sys/block | tr '\n' ' ')  -- 'reboot -f' ends the VM (reboot=k)."
while true; do
	setsid cttyhack sh -l
	echo "shell exited; starting another ('reboot -f' ends the VM)"
done
INIT
chmod 0755 "$stage/init"

mkdir -p -- "$CACHE_ROOT"
# newc is the format the kernel unpacks; every file owned by root in the guest.
(cd -- "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner 0:0 --quiet) |
	gzip -9 >"$OUT.partial"
mv -f -- "$OUT.partial" "$OUT"
printf 'build-initramfs: %s (%s bytes)\n' "$OUT" "$(stat -c %s -- "$OUT")" >&2
printf '%s\n' "$OUT"
