#!/usr/bin/env python3
"""The guest sees the virtual CPU minivmm describes (vmm/kvm/cpuid.h): one
package of N single-threaded cores, APIC ids 0..N-1, and an XSAVE layout it
can use, with no consistency or topology complaint from its kernel.

Agent mode (no --initramfs; runs on PVM too): the in-kernel agent guest boots
with N vCPUs; its console must show every CPU brought up, which FPU context
format the kernel chose, and none of the warnings below.

Shell mode (--initramfs; guest userspace: hardware virtualization or the
nested sandbox): the busybox shell on a pseudo-terminal reads /proc/cpuinfo
("siblings", "cpu cores", "core id", "apicid" per processor) and dmesg.

The FPU line tells which XSAVE policy applied: "x87 FPU will use FXSAVE" on
PVM (noxsave) and in the nested sandbox (XSAVE hidden, vmm/kvm/host_cpu.h);
"Enabled xstate features ..." with hardware virtualization elsewhere.

usage: guest_cpu_topology_test.py MINIVMM KERNEL --vcpus N [--initramfs PATH]
"""
import argparse
import os
import re
import subprocess
import sys
import time

from framework.pty_console import PtyVm, verdict

# What Linux 6.1 prints when CPUID contradicts itself: the XSAVE size check
# (arch/x86/kernel/fpu/xstate.c, XSTATE_WARN_ON), firmware-bug notes (APIC
# ids, topology), the scheduler's topology sanity check
# (arch/x86/kernel/smpboot.c topology_sane) and any WARN().
WARNINGS = [
    rb"XSAVE consistency problem",
    rb"\[Firmware Bug\]",
    rb"is not on the same node",
    rb"WARNING: CPU",
]
# The kernel's FPU set-up line (arch/x86/kernel/fpu/xstate.c and init.c):
# XSAVE with a context size that passed the check, or FXSAVE without XSAVE.
FPU_LINE = re.compile(rb"x86/fpu: (Enabled xstate features 0x[0-9a-f]+, context size is \d+ bytes"
                      rb"|x87 FPU will use FXSAVE)")
PROMPT = re.compile(rb"[#$] (?:\x1b\[6n)?$")


def check_kernel_log(text, vcpus, failures):
    """Boot messages common to both modes."""
    for pattern in WARNINGS:
        for m in re.finditer(rb".*" + pattern + rb".*", text):
            failures.append(f"kernel warns: {m[0].decode(errors='replace').strip()}")
    for want in (f"smp: Brought up 1 node, {vcpus} CPU", f"smpboot: Total of {vcpus} processors"):
        if want.encode() not in text:
            failures.append(f"no {want!r} in the kernel log")
    fpu = FPU_LINE.search(text)
    if not fpu:
        failures.append("no 'x86/fpu: Enabled xstate features ...' or 'x86/fpu: x87 FPU will use "
                        "FXSAVE' line in the kernel log")
    else:
        print(f"kernel FPU line: {fpu[0].decode()}")
    return fpu[0].decode() if fpu else ""


def check_fpu_matches_xsave_policy(fpu_line, minivmm_log, failures):
    """Where minivmm hid XSAVE (PVM; a host that hides the guest's XSETBV
    from KVM), the guest must use FXSAVE; elsewhere XSAVE must work."""
    hidden = "PVM host:" in minivmm_log or "guest XSAVE hidden" in minivmm_log
    if hidden and "FXSAVE" not in fpu_line:
        failures.append(f"minivmm hid XSAVE but the guest reports {fpu_line!r}")
    if not hidden and "xstate features" not in fpu_line:
        failures.append(f"XSAVE offered but the guest reports {fpu_line!r}")


def agent_mode(args, failures):
    cmd = [args.minivmm, "--kernel", args.kernel, "--memory", "64", "--vcpus", str(args.vcpus),
           "--no-stdin", "--cmdline", "console=ttyS0 reboot=k panic=-1 minivmm_agent.exit_status=0"]
    print("running:", " ".join(cmd), flush=True)
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=args.timeout)
    except subprocess.TimeoutExpired as e:
        sys.stdout.buffer.write((e.stdout or b"")[-3000:])
        failures.append(f"no exit within {args.timeout} s")
        return
    console, log = p.stdout, p.stderr.decode(errors="replace")
    for line in console.splitlines():
        if re.search(rb"x86/fpu|smpboot|smp: |XSAVE|Firmware Bug|WARNING", line):
            print("guest:", line.decode(errors="replace"))
    if p.returncode != 0:
        failures.append(f"minivmm exited {p.returncode}; log tail:\n{log[-1500:]}")
    fpu = check_kernel_log(console, args.vcpus, failures)
    if fpu:
        check_fpu_matches_xsave_policy(fpu, log, failures)


def parse_cpuinfo(text):
    """[{field: value}] per processor."""
    cpus = []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "processor":
            cpus.append({})
        if cpus and key:
            cpus[-1][key] = value
    return cpus


def check_cpuinfo(cpus, vcpus, failures):
    if len(cpus) != vcpus:
        failures.append(f"/proc/cpuinfo lists {len(cpus)} processors, want {vcpus}")
    for i, cpu in enumerate(cpus):
        for key, want in (("siblings", str(vcpus)), ("cpu cores", str(vcpus)), ("physical id", "0")):
            if cpu.get(key) != want:
                failures.append(f"processor {i}: {key!r} is {cpu.get(key)!r}, want {want!r}")
    for key in ("core id", "apicid", "initial apicid"):
        ids = sorted(int(cpu.get(key, "-1")) for cpu in cpus)
        if ids != list(range(vcpus)):
            failures.append(f"/proc/cpuinfo {key!r} values {ids}, want 0..{vcpus - 1}, distinct")


def shell_mode(args, failures):
    cmd = [args.minivmm, "--kernel", args.kernel, "--initrd", args.initramfs, "--memory", "256",
           "--vcpus", str(args.vcpus), "--cmdline", "console=ttyS0 reboot=k panic=-1 quiet"]
    vm = PtyVm(cmd)
    con, t0 = vm.console, time.monotonic()
    con.read_until(rb"minivmm initramfs", args.timeout)
    con.read_until(PROMPT, 60)
    print(f"\nshell prompt {time.monotonic() - t0:.1f}s after start")
    cpuinfo = con.run("grep -E '^(processor|physical id|siblings|core id|cpu cores|apicid"
                      "|initial apicid)' /proc/cpuinfo")
    check_cpuinfo(parse_cpuinfo(cpuinfo), args.vcpus, failures)
    dmesg = con.run("dmesg", timeout=120).encode()
    for line in dmesg.splitlines():
        if re.search(rb"x86/fpu|smpboot|smp: |XSAVE|Firmware Bug|WARNING", line):
            print("guest dmesg:", line.decode(errors="replace"))
    fpu = check_kernel_log(dmesg, args.vcpus, failures)
    vm.type(b"reboot -f\r")
    log = vm.finish("shell (reboot -f)", failures)
    if fpu:
        check_fpu_matches_xsave_policy(fpu, log, failures)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("minivmm")
    ap.add_argument("kernel")
    ap.add_argument("--vcpus", type=int, required=True)
    ap.add_argument("--initramfs")
    ap.add_argument("--timeout", type=int, default=600)
    args = ap.parse_args()
    for path in (args.kernel, args.initramfs):
        if path and not os.path.exists(path):
            print(f"FAIL: {path} not built (scripts/build-guest.sh, scripts/build-initramfs.sh)")
            return 1
    failures = []
    (shell_mode if args.initramfs else agent_mode)(args, failures)
    return verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
