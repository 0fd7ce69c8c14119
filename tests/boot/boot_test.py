#!/usr/bin/env python3
"""Boot test: boots the guest this project builds under minivmm on /dev/kvm
and checks, from the console output, that the kernel banner appears and the
kernel reaches late init (the agent's marker), and that minivmm exits with the
status the guest reported through the exit device.

With --mbr-disk (repeatable) every disk's partition scan must be on the
console and minivmm's per-disk stats must show reads from it; with
--agent-writes the in-guest agent also writes, flushes and verifies records
on the first disks (up to its 16) and minivmm must count writes on them.
With --expect-memory-mib the kernel's "Memory: .../...K available" total must
cover all the RAM given (less the first MiB's reserved and partial pages).

usage: boot_test.py MINIVMM KERNEL [--status N] [--vcpus N] [--memory MIB]
                    [--mbr-disk CACHE]... [--agent-writes N]
                    [--expect-memory-mib MIB] [--expect REGEX]... [--timeout S]
"""
import argparse
import os
import re
import subprocess
import struct
import sys
import tempfile
import time

from framework import vm_stall
from framework import vmm_log

BANNER = re.compile(rb"Linux version 6\.1\.\S+")
LATE_INIT = b"minivmm-agent: late init reached"
MEMORY_LINE = re.compile(rb"Memory: (\d+)K/(\d+)K available")
AGENT_MAX_DISKS = 64  # guest/agent/disks.h MINIVMM_MAX_DISKS


def host_is_pvm():
    """What minivmm's auto detection should conclude (docs/nested-kvm.md)."""
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    return os.path.exists("/sys/module/kvm_pvm") or not re.search(r"\b(vmx|svm)\b", flags)


def write_mbr_image(path):
    """8 MiB raw image (sparse past the MBR) whose MBR lists two Linux
    partitions, so the guest's partition scan must read sector 0 through
    virtio-blk to find them."""
    mbr = bytearray(512)
    for slot, (start, count) in enumerate([(2048, 4096), (6144, 8192)]):
        entry = struct.pack("<B3sB3sII", 0, b"\0" * 3, 0x83, b"\0" * 3, start, count)
        mbr[446 + 16 * slot:462 + 16 * slot] = entry
    mbr[510:512] = b"\x55\xaa"
    with open(path, "wb") as f:
        f.write(mbr)
        f.truncate(8 << 20)


def disk_name(index):
    """Linux's name for virtio disk `index`: vda..vdz, vdaa.. (virtio_blk.c
    virtblk_name_format)."""
    name = ""
    while index >= 0:
        name = chr(ord("a") + index % 26) + name
        index = index // 26 - 1
    return "vd" + name


def check_disks(console, log, count, written, failures):
    """Each disk's partition scan is on the console; minivmm read every disk
    and wrote the first `written`."""
    stats = {i: (s["reads"], s["writes"]) for i, s in vmm_log.last_stats(log).items()}
    for i in range(count):
        name = disk_name(i)
        if not re.search(f"{name}: {name}1 {name}2".encode(), console):
            failures.append(f"no partition scan line for disk {i} ({name}: {name}1 {name}2)")
        reads, writes = stats.get(i, (0, 0))
        if reads == 0:
            failures.append(f"minivmm counted no reads on disk {i}")
        if i < written and writes == 0:
            failures.append(f"minivmm counted no writes on disk {i}")
    print(f"disks: {count} scanned; per-disk (reads, writes): "
          f"{[stats.get(i) for i in range(count)]}")


def check_memory(console, mib, failures):
    """The kernel's total (the second number) is all the RAM given, less at
    most the first MiB (page 0, the EBDA/BIOS area and the partial page)."""
    m = MEMORY_LINE.search(console)
    if not m:
        failures.append("no 'Memory: ...K/...K available' line on the console")
        return
    total_k = int(m[2])
    print(f"kernel reports Memory: {int(m[1])}K/{total_k}K available (given {mib * 1024}K)")
    if not mib * 1024 - 1024 <= total_k <= mib * 1024:
        failures.append(f"kernel sees {total_k}K of RAM, given {mib * 1024}K")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("minivmm")
    ap.add_argument("kernel")
    ap.add_argument("--status", type=int, default=0)
    ap.add_argument("--vcpus", type=int, default=1)
    ap.add_argument("--memory", type=int, default=64)
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--mbr-disk", action="append", default=[], metavar="CACHE",
                    help="add an 8 MiB disk with an MBR of two partitions, this cache mode")
    ap.add_argument("--agent-writes", type=int, default=0, metavar="N",
                    help="the agent writes N records to each of the first 16 disks and verifies them")
    ap.add_argument("--expect-memory-mib", type=int, metavar="MIB",
                    help="the kernel's reported total RAM must be MIB (less the first MiB)")
    ap.add_argument("--expect", action="append", default=[],
                    help="regex that must match the console output")
    args = ap.parse_args()
    written = min(len(args.mbr_disk), AGENT_MAX_DISKS) if args.agent_writes else 0

    if not os.path.exists(args.kernel):
        print(f"FAIL: guest kernel {args.kernel} not built (run scripts/build-guest.sh)")
        return 1
    cmd = [args.minivmm, "--kernel", args.kernel, "--memory", str(args.memory),
           "--vcpus", str(args.vcpus), "--no-stdin",
           "--cmdline", f"console=ttyS0 reboot=k panic=-1 minivmm_agent.exit_status={args.status}"]
    if written:
        cmd[-1] += (f" minivmm_agent.writes={args.agent_writes}"
                    f" minivmm_agent.expect_disks={written}")
    tmp = tempfile.TemporaryDirectory(dir="/var/tmp")  # disk-backed: O_DIRECT works
    for i, cache in enumerate(args.mbr_disk):
        path = os.path.join(tmp.name, f"disk{i}.img")
        write_mbr_image(path)
        cmd += ["--disk", f"{path},cache={cache},serial=boot-disk-{i}"]
    print("running:", " ".join(cmd), flush=True)
    start = time.monotonic()
    # The log goes to a file, so a timed-out wait can read it while minivmm
    # still runs (vm_stall: stalled sandbox or hung minivmm).
    with tempfile.TemporaryFile() as log_file:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log_file)
        try:
            console, _ = p.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            stall = vm_stall.after_timeout(
                p, lambda: os.pread(log_file.fileno(), 1 << 24, 0).decode(errors="replace"), "boot")
            p.kill()
            console, _ = p.communicate()
            sys.stdout.buffer.write(console[-3000:])
            print(f"FAIL: no exit within {args.timeout} s"
                  f"{f' (minivmm still running: {stall})' if stall else ''}")
            return 1
        log = os.pread(log_file.fileno(), 1 << 30, 0)
    elapsed = time.monotonic() - start
    sys.stdout.buffer.write(console[-3000:])
    sys.stdout.buffer.write(log[-3000:])

    failures = []
    if not BANNER.search(console):
        failures.append("kernel banner 'Linux version 6.1' not on the console")
    if LATE_INIT not in console:
        failures.append("late-init marker not on the console")
    if p.returncode != args.status:
        failures.append(f"exit code {p.returncode}, guest reported {args.status}")
    for pattern in args.expect:
        if not re.search(pattern.encode(), console):
            failures.append(f"console has no match for {pattern!r}")
    if args.mbr_disk:
        check_disks(console, log, len(args.mbr_disk), written, failures)
    if args.expect_memory_mib:
        check_memory(console, args.expect_memory_mib, failures)
    if b"first KVM_RUN" not in log:
        failures.append("no 'first KVM_RUN' timing line in the log")
    # PVM detection: the workarounds belong on PVM only (hardware
    # virtualization, the nested sandbox included, must run the guest as is).
    pvm_applied = b"PVM host:" in log
    if pvm_applied != host_is_pvm():
        failures.append(f"PVM workarounds {'applied' if pvm_applied else 'not applied'}, "
                        f"but this host is {'PVM' if host_is_pvm() else 'not PVM'}")
    print(f"host: {'PVM' if host_is_pvm() else 'not PVM (hardware virtualization)'}; "
          f"PVM workarounds {'applied' if pvm_applied else 'not applied'}")
    print(f"boot took {elapsed:.1f} s (vcpus={args.vcpus}, memory={args.memory} MiB)")
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("PASS: banner, late init, exit status", args.status)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
