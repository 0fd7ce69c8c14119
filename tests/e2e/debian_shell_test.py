#!/usr/bin/env python3
"""configs/debian.toml as a user runs it: the Debian root shell on a terminal,
and a guest that switches its disks' write cache from userspace.

Needs guest userspace (hardware virtualization: natively on VT-x/AMD-V, in the
nested-KVM sandbox elsewhere, scripts/with-kvm.sh --hw-virt), the distro
kernel and the root image (scripts/build-guest.sh --flavour distro,
scripts/build-rootfs.sh). The config's ${MINIVMM_CACHE} points at a private
tree: a link to the kernel and a copy of the root image, so the pristine
image is never written.

minivmm runs `--config configs/debian.toml` plus five data disks (one per
cache mode, serial tog-<mode>) with a pseudo-terminal as its controlling
terminal. The test waits for bash's prompt, types commands and reads their
answers, then on each data disk:
  1. reads /sys/block/vdX/cache_type (the mode's write-cache state);
  2. writes the other state into it (virtio 1.x 5.2.4: the `writeback`
     config byte, VIRTIO_BLK_F_CONFIG_WCE) and reads it back;
  3. writes a pattern with `dd oflag=direct conv=fsync` and one through the
     page cache with `dd conv=fsync`.
It leaves with `exit` (minivmm-init syncs and resets the guest: exit 0).
Host checks, from docs/cache-modes.md "The guest's toggle":
  - the guest sees the switched state;
  - the image fds keep the configured O_DIRECT (the image is not reopened);
  - per-disk stats follow the switched state: writeback switched off behaves
    as writethrough, none as directsync, writethrough switched on as
    writeback, directsync as none; unsafe switched off still makes no write
    durable and never syncs ("Where code and contract differ");
  - every pattern is in its image; e2fsck -fn on the root copy is clean.

usage: debian_shell_test.py MINIVMM CONFIG KERNEL ROOT_IMAGE
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from framework.images import open_image_flags
from framework.mode_contract import check_mode_stats, mode_stats
from framework.pty_console import PtyVm, verdict
from framework.cache_modes import DIRECT, MODES, WRITE_BACK

# What each mode behaves as once the guest has switched its write cache.
SWITCHED = {"writeback": "writethrough", "none": "directsync", "writethrough": "writeback",
            "directsync": "none"}
CHUNK = 65536  # per dd
WRITES = [("oflag=direct conv=fsync", 0), ("conv=fsync", 16)]  # (dd options, 4 KiB block)
# The direct dd makes 16 writes of 4 KiB; the page cache merges the other's into one or more.
MIN_WRITES = CHUNK // 4096 + 1
PROMPT = re.compile(rb"# (?:\x1b\[\?2004h)?$|# $")


def pattern(mode, index):
    line = f"minivmm-toggle-{mode}-{index}\n".encode()
    return (line * (CHUNK // len(line) + 1))[:CHUNK]


def private_cache(tmp, kernel, root_image):
    """A MINIVMM_CACHE for configs/debian.toml: the kernel linked, the root copied."""
    cache = os.path.join(tmp, "cache")
    os.makedirs(os.path.join(cache, "guest", "current-distro"))
    os.makedirs(os.path.join(cache, "rootfs"))
    os.symlink(os.path.abspath(kernel), os.path.join(cache, "guest", "current-distro", "vmlinux"))
    t = time.monotonic()
    root = os.path.join(cache, "rootfs", "debian.img")
    subprocess.run(["cp", "--sparse=always", root_image, root], check=True)
    print(f"copied the root image in {time.monotonic() - t:.1f} s")
    return cache, root


def start(minivmm, config, cache, images):
    cmd = [minivmm, "--config", config]
    for mode, path in zip(MODES, images):
        cmd += ["--disk", f"{path},cache={mode},serial=tog-{mode}"]
    return PtyVm(cmd, env=dict(os.environ, MINIVMM_CACHE=cache))


def disks_by_serial(con):
    out = con.run("for d in /sys/block/vd*; do echo ${d##*/} $(cat $d/serial) \"$(cat $d/cache_type)\"; done")
    found = {}
    for line in out.splitlines():
        name, serial, cache = line.split(" ", 2)
        if serial.startswith("tog-"):
            found[serial.removeprefix("tog-")] = (name, cache)
    return found


def drive_shell(con, failures):
    answer = con.run("echo $((6 * 7)) $(uname -s) $(cut -d. -f1 /etc/debian_version)")
    if answer != "42 Linux 12":
        failures.append(f"shell: want '42 Linux 12' (Debian 12), got {answer!r}")
    disks = disks_by_serial(con)
    if sorted(disks) != sorted(MODES):
        failures.append(f"guest sees data disks {disks}, want one per mode")
    for mode, (dev, cache) in sorted(disks.items()):
        want = "write back" if mode in WRITE_BACK else "write through"
        if cache != want:
            failures.append(f"{mode}: cache_type {cache!r} at boot, want {want!r}")
        other = "write through" if want == "write back" else "write back"
        con.run(f"echo '{other}' > /sys/block/{dev}/cache_type")
        now = con.run(f"cat /sys/block/{dev}/cache_type /sys/block/{dev}/queue/write_cache")
        print(f"{mode}: {dev} switched from {want!r} to {now.splitlines()}")
        if now.splitlines() != [other, other]:
            failures.append(f"{mode}: after writing {other!r}: cache_type/write_cache {now.splitlines()}")
        for i, (opts, block) in enumerate(WRITES):
            con.run(f"yes minivmm-toggle-{mode}-{i} | head -c {CHUNK} > /tmp/p")
            con.run(f"dd if=/tmp/p of=/dev/{dev} bs=4096 count={CHUNK // 4096} seek={block} {opts} 2>/dev/null")


def check_host(images, text, failures):
    for mode, path in zip(MODES, images):
        with open(path, "rb") as f:
            data = f.read()
        for i, (_, block) in enumerate(WRITES):
            if data[block * 4096:block * 4096 + CHUNK] != pattern(mode, i):
                failures.append(f"{mode}: write {i} not in the image at block {block}")
    stats = mode_stats(text)
    for index, mode in enumerate(MODES, start=1):  # disk 0 is the root
        stat = stats.get(index)
        if stat is None:
            failures.append(f"{mode}: no 'disk {index} stats:' line")
            continue
        if mode in SWITCHED:
            print(f"{mode} switched, checked as {SWITCHED[mode]}:")
            check_mode_stats(SWITCHED[mode], stat, MIN_WRITES, failures)
            continue
        _, writes, durable, flush_req, fdatasyncs = stat
        print(f"unsafe switched to write through: writes={writes} durable={durable} "
              f"flush_requests={flush_req} fdatasyncs={fdatasyncs}")
        if writes < MIN_WRITES or durable != 0 or fdatasyncs != 0 or flush_req > 1:  # one flush at exit is minivmm's own
            failures.append(f"unsafe switched off: writes={writes} durable={durable} flush_requests="
                            f"{flush_req} fdatasyncs={fdatasyncs}: want all writes plain, no sync, "
                            "no guest flush")


def main():
    minivmm, config, kernel, root_image = sys.argv[1:5]
    for path in (kernel, root_image):
        if not os.path.exists(path):
            print(f"FAIL: {path} not built (scripts/build-guest.sh --flavour distro, scripts/build-rootfs.sh)")
            return 1
    failures = []
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:  # disk-backed: O_DIRECT works
        cache, root = private_cache(tmp, kernel, root_image)
        images = []
        for mode in MODES:
            images.append(os.path.join(tmp, f"tog-{mode}.img"))
            with open(images[-1], "wb") as f:
                f.truncate(4 << 20)
        vm = start(minivmm, config, cache, images)
        con, t0 = vm.console, time.monotonic()
        try:
            con.read_until(rb"root shell on ttyS0", 300)
            vm.type(b"\r")
            con.read_until(PROMPT, 60)
            print(f"\nbash prompt {time.monotonic() - t0:.1f} s after minivmm started")
            # Wide lines: readline's wrapping would otherwise split long commands.
            con.run("stty cols 400; bind 'set enable-bracketed-paste off'")
            flags = open_image_flags(vm.proc.pid, images)
            drive_shell(con, failures)
            for mode, path in zip(MODES, images):
                direct = any(f & os.O_DIRECT for f in flags.get(path, set()))
                if direct != (mode in DIRECT):
                    failures.append(f"{mode}: image fd O_DIRECT={direct}, flags {flags.get(path)}")
            vm.type(b"exit\r")
        except (TimeoutError, EOFError, AssertionError) as e:
            failures.append(str(e))
            vm.proc.terminate()
        text = vm.finish("debian shell (exit)", failures, timeout=180)
        check_host(images, text, failures)
        fsck = subprocess.run(["e2fsck", "-fn", root], capture_output=True, text=True)
        print(f"e2fsck -fn on the root copy: exit {fsck.returncode}")
        if fsck.returncode != 0:
            failures.append(f"e2fsck -fn on the root exited {fsck.returncode}:\n{fsck.stdout[-1500:]}")
    return verdict(failures)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if shutil.which("e2fsck") is None:
        print("FAIL: e2fsck not found (apt-get install -y e2fsprogs)")
        sys.exit(1)
    sys.exit(main())
