#!/usr/bin/env python3
"""A real Debian userspace on minivmm: fio with data verification on a disk per
cache mode, and a root filesystem that survives a power-off.

Needs guest userspace (hardware virtualization: natively on VT-x/AMD-V, in the
nested-KVM sandbox elsewhere, scripts/with-kvm.sh --hw-virt), the distro kernel
(scripts/build-guest.sh --flavour distro) and the root image
(scripts/build-rootfs.sh; this test never writes to it: it boots it read-only
or boots a copy).

fio (one boot): the pristine root read-only on vda, five data disks vdb..vdf,
one per cache mode (serial fio-<mode>); /sbin/minivmm-init runs the
fio-verify workload (guest/rootfs/workloads/fio-verify): per disk a direct
(libaio, O_DIRECT) and a buffered fsync (psync, fsync every 16) randwrite job
with --verify=crc32c, then a --verify_only pass after dropping the guest's
page cache. Checks: every job of every disk reported rc=0 err=0 in both
phases and fio printed no verification error; the write cache each disk shows
the guest; O_DIRECT on the none/directsync image fds; minivmm's per-disk stats
against the contract (docs/cache-modes.md):
  writethrough, directsync: every write durable before it completes, no guest flush
  writeback, none:          no dsync write, guest flushes arrive and are fdatasync'd
  unsafe:                   no dsync write, flushes arrive, never fdatasync'd
It prints the boot time to the first userspace process and fio's figures.

persist (two boots of a copy of the image, cache=writeback): persist-write
writes files and their sha256 sums and syncs, the init remounts / read-only
and resets the guest; the second boot's persist-check reads them back; then
e2fsck -fn on the image from the host must be clean.

usage: fio_verify_test.py MINIVMM KERNEL ROOT_IMAGE [fio|persist|all] [--size 8M]
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

from framework.images import open_image_flags
from framework.mode_contract import check_mode_stats, mode_stats
from framework.pty_console import verdict
from framework import vm_stall
from framework.cache_modes import DIRECT, MODES, WRITE_BACK

CMDLINE = "console=ttyS0 quiet reboot=k panic=-1 root=/dev/vda rootfstype=ext4 init=/sbin/minivmm-init"
USERSPACE = re.compile(r"minivmm-init: userspace up at ([\d.]+) s")
WORKLOAD = re.compile(r"minivmm-workload: (\S+) exit=(\d+)")
FIO_LINE = re.compile(r"^fio-verify: disk=(\S+) serial=(\S*) write_cache=(\S+) job=(\S+) phase=(\S+) "
                      r"rc=(\d+) err=(\d+) read_kib=(\d+) read_bw_kibs=(\d+) read_iops=(\d+) "
                      r"write_kib=(\d+) write_bw_kibs=(\d+) write_iops=(\d+) runtime_ms=(\d+)", re.M)
VERIFY_ERROR = re.compile(r"verify|crc32c|bad magic|bad header|EILSEQ|Invalid or incomplete", re.I)


class Boot:
    """One minivmm run: console lines (with their arrival time) and the log."""

    def __init__(self, minivmm, kernel, disks, append, memory=512, timeout=600):
        cmd = [minivmm, "--kernel", kernel, "--memory", str(memory), "--vcpus", "2", "--no-stdin",
               "--cmdline", f"{CMDLINE} {append}"]
        for d in disks:
            cmd += ["--disk", d]
        print("+", " ".join(cmd), flush=True)
        self.t0 = time.monotonic()
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log)
        self.lines, self.first_user = [], None
        self.timeout = timeout
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\r\n")
            if self.first_user is None and USERSPACE.search(line):
                self.first_user = time.monotonic() - self.t0
            self.lines.append(line)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def wait_userspace(self, limit):
        deadline = time.monotonic() + limit
        while self.first_user is None and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.first_user is not None

    def finish(self, label, failures):
        try:
            rc = self.proc.wait(timeout=max(1, self.timeout - (time.monotonic() - self.t0)))
        except subprocess.TimeoutExpired:
            stall = vm_stall.after_timeout(
                self.proc, lambda: os.pread(self.log.fileno(), 1 << 24, 0).decode(errors="replace"),
                label)
            self.proc.kill()
            rc = self.proc.wait()
            failures.append(f"{label}: minivmm did not exit within {self.timeout}s"
                            f"{f' (minivmm still running: {stall})' if stall else ''}")
        self.reader.join(timeout=10)
        self.log.seek(0)
        log = self.log.read().decode(errors="replace")
        if rc != 0:
            failures.append(f"{label}: minivmm exited {rc}, want 0; log tail:\n{log[-1500:]}")
        console = "\n".join(self.lines)
        m = USERSPACE.search(console)
        wall = time.monotonic() - self.t0
        if m:
            print(f"{label}: first userspace process at guest uptime {m.group(1)} s, "
                  f"{self.first_user:.2f} s after minivmm started; run {wall:.1f} s, exit {rc}")
        else:
            failures.append(f"{label}: no 'minivmm-init: userspace up' on the console")
        return console, log


def workload_status(console, name, label, failures):
    m = WORKLOAD.search(console)
    if not m or m.group(1) != name:
        failures.append(f"{label}: no 'minivmm-workload: {name} exit=N' line")
    elif m.group(2) != "0":
        failures.append(f"{label}: workload {name} exited {m.group(2)}")


def check_fio(console, failures):
    results = {}
    for m in FIO_LINE.finditer(console):
        disk, serial, wc, job, phase, rc, err = m.groups()[:7]
        nums = list(map(int, m.groups()[7:]))
        mode = serial.removeprefix("fio-")
        results[(mode, job, phase)] = (disk, wc, int(rc), int(err), nums)
    for line in console.splitlines():
        if line.startswith("fio: ") and VERIFY_ERROR.search(line):
            failures.append(f"fio reported: {line}")
    print(f"\n{'mode':12} {'job':7} {'phase':7} {'write MiB/s':>11} {'write IOPS':>10} {'read MiB/s':>10} {'read IOPS':>9}  wce")
    for mode in MODES:
        for job in ("direct", "fsync"):
            for phase in ("write", "verify"):
                r = results.get((mode, job, phase))
                if r is None:
                    failures.append(f"{mode}: no fio result for job {job} phase {phase}")
                    continue
                disk, wc, rc, err, (rkib, rbw, riops, wkib, wbw, wiops, ms) = r
                print(f"{mode:12} {job:7} {phase:7} {wbw / 1024:11.2f} {wiops:10} {rbw / 1024:10.2f} {riops:9}  {wc}")
                if rc != 0 or err != 0:
                    failures.append(f"{mode}: fio job {job} phase {phase} rc={rc} err={err}")
                if phase == "write" and wkib == 0:
                    failures.append(f"{mode}: fio job {job} wrote nothing")
                if phase == "verify" and rkib == 0:
                    failures.append(f"{mode}: fio job {job} verify pass read nothing")
                want = "back" if mode in WRITE_BACK else "through"
                if wc != want:
                    failures.append(f"{mode}: guest sees write cache {wc!r}, want {want!r}")


def check_stats(log, failures):
    stats = mode_stats(log)
    print()
    for i, mode in enumerate(MODES, start=1):  # disk 0 is the root
        if i not in stats:
            failures.append(f"{mode}: no 'disk {i} stats:' line in minivmm's log")
            continue
        reads, writes = stats[i][0], stats[i][1]
        if writes == 0 or reads == 0:
            failures.append(f"{mode}: device counted reads={reads} writes={writes}; fio did both")
        check_mode_stats(mode, stats[i], 1, failures)


def run_fio(args, tmp, failures):
    size = args.size_bytes
    images = []
    for mode in MODES:
        path = os.path.join(tmp, f"fio-{mode}.img")
        with open(path, "wb") as f:
            f.truncate(2 * size + (1 << 20))
        images.append(path)
    disks = [f"{args.image},cache=writeback,ro,serial=debian-root"]
    disks += [f"{p},cache={m},serial=fio-{m}" for m, p in zip(MODES, images)]
    boot = Boot(args.minivmm, args.kernel, disks,
                f"ro minivmm.workload=fio-verify minivmm.fio_size={args.size}", timeout=args.timeout)
    if boot.wait_userspace(args.timeout / 2):
        flags = open_image_flags(boot.proc.pid, images)
        for mode, path in zip(MODES, images):
            direct = any(f & os.O_DIRECT for f in flags.get(path, set()))
            if direct != (mode in DIRECT):
                failures.append(f"{mode}: image fd O_DIRECT={direct}, flags {flags.get(path)}")
    console, log = boot.finish("fio", failures)
    workload_status(console, "fio-verify", "fio", failures)
    check_fio(console, failures)
    check_stats(log, failures)


def run_persist(args, tmp, failures):
    image = os.path.join(tmp, "root.img")
    t = time.monotonic()
    subprocess.run(["cp", "--sparse=always", args.image, image], check=True)
    print(f"persist: copied the root image in {time.monotonic() - t:.1f} s")
    for step in ("persist-write", "persist-check"):
        boot = Boot(args.minivmm, args.kernel, [f"{image},cache=writeback,serial=debian-root"],
                    f"rw minivmm.workload={step}", timeout=args.timeout)
        console, _ = boot.finish(step, failures)
        workload_status(console, step, step, failures)
        if failures:
            return
    fsck = subprocess.run(["e2fsck", "-fn", image], capture_output=True, text=True)
    print(f"e2fsck -fn: exit {fsck.returncode}\n{fsck.stdout}{fsck.stderr}")
    if fsck.returncode != 0:
        failures.append(f"e2fsck -fn on the image after two boots exited {fsck.returncode}")


def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMG]?)", s)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {s!r}")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("minivmm")
    p.add_argument("kernel")
    p.add_argument("image")
    p.add_argument("what", nargs="?", default="all", choices=["fio", "persist", "all"])
    p.add_argument("--size", default="8M", help="fio size per job (two jobs per disk)")
    p.add_argument("--timeout", type=int, default=900, help="per boot, seconds")
    args = p.parse_args()
    args.size_bytes = parse_size(args.size)
    for path, how in ((args.kernel, "scripts/build-guest.sh --flavour distro"),
                      (args.image, "scripts/build-rootfs.sh")):
        if not os.path.exists(path):
            print(f"FAIL: {path} not built ({how})")
            return 1
    failures = []
    tmpdir = os.environ.get("TMPDIR") or "/var/tmp"
    with tempfile.TemporaryDirectory(dir=tmpdir, prefix="fio-verify-") as tmp:  # disk-backed: O_DIRECT
        if args.what in ("fio", "all"):
            run_fio(args, tmp, failures)
        if args.what in ("persist", "all"):
            run_persist(args, tmp, failures)
    return verdict(failures)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
