#!/usr/bin/env python3
"""Interactive guest over minivmm's serial console, and guest userspace I/O on
every cache mode. Needs hardware-virtualization semantics (guest userspace
makes system calls): natively on VT-x/AMD-V, in the nested-KVM sandbox
elsewhere (scripts/with-kvm.sh --hw-virt).

Run 1: minivmm's stdin/stdout are a pseudo-terminal (its controlling tty), as
when a user types. The test waits for the busybox initramfs shell, types
commands and reads their answers, then from the guest shell writes a pattern
to each of five disks (one per cache mode) three ways: `dd oflag=direct`,
`dd conv=fsync` and a plain `dd` followed by `sync`, and checks what the guest
sees (/sys/block/vdX/queue/write_cache). It ends the VM with `reboot -f`.
Checks after it: exit 0, the terminal's settings restored, every pattern in
its image on the host, the image fds' O_DIRECT while it ran, and minivmm's
per-disk stats line against the contract (docs/cache-modes.md):
  writethrough, directsync: every write dsync, no guest flush reaches us
  writeback, none:          no dsync write, guest flushes arrive, fdatasync'd
  unsafe:                   no dsync write, flushes arrive, never fdatasync'd
Run 2: boots the same images again, reads run 1's first pattern back in the
guest, then Ctrl-C on the terminal: a graceful stop, exit 0, terminal restored.

usage: guest_shell_test.py MINIVMM KERNEL INITRAMFS
"""
import os
import re
import signal
import sys
import tempfile
import time

from framework.images import open_image_flags
from framework.mode_contract import check_mode_stats, mode_stats
from framework.pty_console import PtyVm, verdict
from framework.cache_modes import DIRECT, MODES, WRITE_BACK

# busybox ash asks the terminal for the cursor position after its prompt
# (ESC [ 6 n); it does not wait for the answer, so the test gives none (an
# answer racing with typed input garbles the line).
PROMPT = re.compile(rb"[#$] (?:\x1b\[6n)?$")
CHUNK = 16384  # bytes per dd write: 4 blocks of 4 KiB
# (dd options, 4 KiB block where the pattern goes, follow-up command)
WRITES = [("oflag=direct", 0, ""), ("conv=fsync", 16, ""), ("", 32, "sync")]


def pattern(mode, index):
    line = f"minivmm-{mode}-write{index}\n".encode()
    return (line * (CHUNK // len(line) + 1))[:CHUNK]


def start_vm(minivmm, kernel, initramfs, images):
    cmd = [minivmm, "--kernel", kernel, "--initrd", initramfs, "--memory", "256",
           "--cmdline", "console=ttyS0 reboot=k panic=-1 quiet"]
    for mode, path in zip(MODES, images):
        cmd += ["--disk", f"{path},cache={mode},serial=shell-{mode}"]
    return PtyVm(cmd)


def disk_map(console):
    """Guest device name per mode, from each disk's distinct capacity."""
    sizes = {(8 + i) << 20: mode for i, mode in enumerate(MODES)}
    out = console.run("for d in /sys/block/vd*; do echo ${d##*/} $(cat $d/size) "
                      "\"$(cat $d/queue/write_cache)\"; done")
    found, wce = {}, {}
    for line in out.splitlines():
        name, sectors, cache = line.split(" ", 2)
        mode = sizes.get(int(sectors) * 512)
        if mode:
            found[mode], wce[mode] = name, cache
    return found, wce


def run_one(minivmm, kernel, initramfs, images, failures):
    vm = start_vm(minivmm, kernel, initramfs, images)
    con, t0 = vm.console, time.monotonic()
    con.read_until(rb"minivmm initramfs", 300)
    con.read_until(PROMPT, 60)
    print(f"\nrun 1: shell prompt {time.monotonic() - t0:.1f}s after start")
    answer = con.run("echo $((6 * 7)) $(uname -s)")
    if answer != "42 Linux":
        failures.append(f"shell: 'echo $((6 * 7)) $(uname -s)' answered {answer!r}")
    devices, wce = disk_map(con)
    if sorted(devices) != sorted(MODES):
        failures.append(f"guest sees disks {devices}, want one per mode {MODES}")
    for mode, cache in wce.items():
        want = "write back" if mode in WRITE_BACK else "write through"
        if cache != want:
            failures.append(f"{mode}: guest sees write_cache {cache!r}, want {want!r}")
    flags = open_image_flags(vm.proc.pid, images)
    for mode, path in zip(MODES, images):
        direct = any(f & os.O_DIRECT for f in flags.get(path, set()))
        if direct != (mode in DIRECT):
            failures.append(f"{mode}: image fd O_DIRECT={direct}, flags {flags.get(path)}")
    for mode, dev in devices.items():
        for i, (opts, block, after) in enumerate(WRITES):
            con.run(f"yes minivmm-{mode}-write{i} | head -c {CHUNK} > /tmp/p")
            con.run(f"dd if=/tmp/p of=/dev/{dev} bs=4096 count=4 seek={block} {opts} 2>/dev/null"
                    + (f"; {after}" if after else ""))
    vm.type(b"reboot -f\r")
    text = vm.finish("run 1 (reboot -f)", failures)
    check_images(images, failures)
    check_stats(text, failures)


def check_images(images, failures):
    for mode, path in zip(MODES, images):
        with open(path, "rb") as f:
            data = f.read()
        for i, (_, block, _) in enumerate(WRITES):
            got = data[block * 4096:block * 4096 + CHUNK]
            if got != pattern(mode, i):
                failures.append(f"{mode}: write {i} not in the image at block {block}: {got[:40]!r}")


def check_stats(text, failures):
    stats = mode_stats(text)
    for i, mode in enumerate(MODES):
        if i not in stats:
            failures.append(f"{mode}: no 'disk {i} stats:' line in minivmm's log")
            continue
        check_mode_stats(mode, stats[i], len(WRITES), failures)


def run_two(minivmm, kernel, initramfs, images, failures):
    vm = start_vm(minivmm, kernel, initramfs, images)
    con = vm.console
    con.read_until(rb"minivmm initramfs", 300)
    con.read_until(PROMPT, 60)
    devices, _ = disk_map(con)
    dev = devices.get("directsync")
    if dev:
        got = con.run(f"dd if=/dev/{dev} bs=4096 count=1 2>/dev/null | head -n 1")
        if got != "minivmm-directsync-write0":
            failures.append(f"run 2: directsync disk starts with {got!r}, want run 1's pattern")
    vm.type(b"\x03")  # ISIG on the terminal: SIGINT to minivmm
    vm.finish("run 2 (Ctrl-C)", failures)


def main():
    minivmm, kernel, initramfs = sys.argv[1:4]
    for path in (kernel, initramfs):
        if not os.path.exists(path):
            print(f"FAIL: {path} not built (scripts/build-guest.sh, scripts/build-initramfs.sh)")
            return 1
    failures = []
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:  # disk-backed: O_DIRECT works
        images = []
        for i, mode in enumerate(MODES):
            path = os.path.join(d, f"{mode}.img")
            with open(path, "wb") as f:
                f.truncate((8 + i) << 20)
            images.append(path)
        try:
            run_one(minivmm, kernel, initramfs, images, failures)
            run_two(minivmm, kernel, initramfs, images, failures)
        except (TimeoutError, EOFError, AssertionError) as e:
            failures.append(str(e))
    return verdict(failures)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
