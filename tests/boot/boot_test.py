#!/usr/bin/env python3
"""Boot test: boots the guest this project builds under minivmm on /dev/kvm
and checks, from the console output, that the kernel banner appears and the
kernel reaches late init (the agent's marker), and that minivmm exits with the
status the guest reported through the exit device.

usage: boot_test.py MINIVMM KERNEL [--status N] [--vcpus N] [--timeout S]
"""
import argparse
import os
import re
import subprocess
import struct
import sys
import tempfile
import time

BANNER = re.compile(rb"Linux version 6\.1\.\S+")
LATE_INIT = b"minivmm-agent: late init reached"


def host_is_pvm():
    """What minivmm's auto detection should conclude (docs/nested-kvm.md)."""
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    return os.path.exists("/sys/module/kvm_pvm") or not re.search(r"\b(vmx|svm)\b", flags)


def write_mbr_image(path):
    """8 MiB raw image whose MBR lists two Linux partitions, so the guest's
    partition scan must read sector 0 through virtio-blk to find them."""
    img = bytearray(8 << 20)
    for slot, (start, count) in enumerate([(2048, 4096), (6144, 8192)]):
        entry = struct.pack("<B3sB3sII", 0, b"\0" * 3, 0x83, b"\0" * 3, start, count)
        img[446 + 16 * slot:462 + 16 * slot] = entry
    img[510:512] = b"\x55\xaa"
    with open(path, "wb") as f:
        f.write(img)


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
    ap.add_argument("--expect", action="append", default=[],
                    help="regex that must match the console output")
    args = ap.parse_args()

    if not os.path.exists(args.kernel):
        print(f"FAIL: guest kernel {args.kernel} not built (run scripts/build-guest.sh)")
        return 1
    cmd = [args.minivmm, "--kernel", args.kernel, "--memory", str(args.memory),
           "--vcpus", str(args.vcpus), "--no-stdin",
           "--cmdline", f"console=ttyS0 reboot=k panic=-1 minivmm_agent.exit_status={args.status}"]
    tmp = tempfile.TemporaryDirectory(dir="/var/tmp")  # disk-backed: O_DIRECT works
    for i, cache in enumerate(args.mbr_disk):
        path = os.path.join(tmp.name, f"disk{i}.img")
        write_mbr_image(path)
        cmd += ["--disk", f"{path},cache={cache},serial=boot-disk-{i}"]
    print("running:", " ".join(cmd), flush=True)
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=args.timeout)
    except subprocess.TimeoutExpired as e:
        sys.stdout.buffer.write(e.stdout or b"")
        print(f"FAIL: no exit within {args.timeout} s")
        return 1
    elapsed = time.monotonic() - start
    console, log = p.stdout, p.stderr
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
