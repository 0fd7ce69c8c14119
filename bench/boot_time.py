#!/usr/bin/env python3
"""Boot-time benchmark: process start -> first KVM_RUN, and process start ->
the guest's late-init marker, for minivmm; QEMU (TCG, same kernel) as the peer
in the same run when qemu-system-x86_64 is installed (QEMU cannot use this
host's PVM /dev/kvm: nested-kvm.md).

With --baseline-minivmm and/or --baseline-vmlinux, a baseline (the unchanged
binary or kernel) boots after each run of the candidate, alternating, so both
see the same host noise; both get a summary.

usage: bench/boot_time.py MINIVMM VMLINUX [--runs N] [--memory MIB]
                          [--baseline-minivmm PATH] [--baseline-vmlinux PATH]
"""
import argparse
import re
import shutil
import statistics
import subprocess
import time

MARKER = b"minivmm-agent: late init reached"
FIRST_RUN = re.compile(rb"first KVM_RUN ([0-9.]+) ms after start")


def time_to_marker(cmd, timeout=600):
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    marker_at = None
    for line in iter(p.stdout.readline, b""):
        if MARKER in line and marker_at is None:
            marker_at = time.monotonic() - start
        if time.monotonic() - start > timeout:
            p.kill()
            break
    p.wait()
    err = p.stderr.read()
    m = FIRST_RUN.search(err)
    return marker_at, (float(m.group(1)) if m else None), p.returncode


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    return f"median {statistics.median(values):8.2f}  min {min(values):8.2f}  max {max(values):8.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("minivmm")
    ap.add_argument("vmlinux")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--memory", type=int, default=64)
    ap.add_argument("--baseline-minivmm", help="unchanged minivmm binary, booted alternately")
    ap.add_argument("--baseline-vmlinux", help="unchanged guest kernel, booted alternately")
    args = ap.parse_args()
    cmdline = "console=ttyS0 reboot=k panic=-1 minivmm_agent.exit_status=0"

    variants = [("minivmm", args.minivmm, args.vmlinux)]
    if args.baseline_minivmm or args.baseline_vmlinux:
        variants.append(("baseline", args.baseline_minivmm or args.minivmm,
                         args.baseline_vmlinux or args.vmlinux))
    results = {name: ([], []) for name, _, _ in variants}
    for i in range(args.runs):
        for name, binary, vmlinux in variants:
            m, f, rc = time_to_marker([binary, "--kernel", vmlinux, "--memory", str(args.memory),
                                       "--no-stdin", "--cmdline", cmdline])
            print(f"{name} run {i + 1}: first KVM_RUN {f} ms, late init {m and round(m, 2)} s, exit {rc}",
                  flush=True)
            results[name][0].append(f)
            results[name][1].append(m)

    for name, binary, vmlinux in variants:
        first_run_ms, marker_s = results[name]
        print(f"\n{name} ({binary}, {vmlinux}), {args.memory} MiB, {args.runs} runs")
        print(f"  start -> first KVM_RUN (ms):  {summary(first_run_ms)}")
        print(f"  start -> late init (s):       {summary(marker_s)}")

    qemu = shutil.which("qemu-system-x86_64")
    if qemu:
        m, _, rc = time_to_marker([qemu, "-accel", "tcg", "-M", "microvm,acpi=off", "-m", str(args.memory),
                                   "-kernel", args.vmlinux, "-append", cmdline, "-nographic",
                                   "-no-reboot", "-device", "isa-debug-exit,iobase=0x4f0,iosize=4"])
        print(f"qemu TCG (peer), 1 run:\n  start -> late init (s):       {m and round(m, 2)}")
    else:
        print("qemu-system-x86_64 not installed: no peer row (apt-get install qemu-system-x86)")


if __name__ == "__main__":
    main()
