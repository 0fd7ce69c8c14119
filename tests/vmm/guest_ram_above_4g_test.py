#!/usr/bin/env python3
"""Guest RAM above 4 GiB, with a tiny guest instead of a
kernel so it takes seconds even where guest code is emulated:
- a 16 GiB guest (or as much as the host allows, when that is less) maps the
  first and the last 2 MiB of its RAM above 4 GiB into its page tables,
  writes a pattern at guest-physical 4 GiB and at the top of RAM, reads both
  back and says so on the console; the test then finds the pattern in
  minivmm's memory (/proc/PID/mem) at the host addresses that back those
  guest addresses: the second KVM memory slot is where the layout says;
- guest RAM is lazy: minivmm's VmRSS stays far below the guest's RAM;
- the host mapping is [3 GiB RAM rw][1 GiB MMIO hole ---p][rest rw], and
  every part of it is MADV_DONTDUMP ("dd" in smaps);
- more RAM than the host allows is refused up front: exit 65 and a message
  naming machine.memory_mib and the reason.
usage: guest_ram_above_4g_test.py MINIVMM"""
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time

from framework.checklist import Checklist
from framework import tiny_guest

MINIVMM = sys.argv[1]
MiB, GiB = 1 << 20, 1 << 30
PATTERN = 0x5A5AA5A512345678
PDPT = 0xA000       # minivmm's identity-map PDPT (vmm/x86_64/memory_layout.h)
NEW_PD = 0x3000000  # a free page of guest RAM for the guest's own PD
VA_HIGH = 4 * GiB   # PDPT entry 4: the first unused one
MAX_RSS = 256 * MiB
CHECKS = Checklist()
report = CHECKS.report
failures = CHECKS.failures


def meminfo(key):
    for line in open("/proc/meminfo"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def host_limit_mib():
    """What vmm/kvm/ram_limits.cpp allows here (None: no host bound)."""
    mode = int(open("/proc/sys/vm/overcommit_memory").read())
    if mode == 1:
        return None
    if mode == 2:
        return (meminfo("CommitLimit") - meminfo("Committed_AS")) // MiB
    return (meminfo("MemTotal") + meminfo("SwapTotal")) // MiB


def guest_code(ram):
    """Maps GPA 4 GiB at VA 4 GiB and the top 2 MiB of RAM at VA 4 GiB + 2 MiB
    (2 MiB pages), writes PATTERN at both ends, reads them back; prints "H" on
    COM1 and spins when both match, else writes 1 to the exit port."""
    top_page = 1 * GiB + ram - 2 * MiB  # ram_top - 2 MiB
    def movabs(reg, imm):  # 48 B8+r imm64
        return bytes([0x48, 0xB8 + reg]) + struct.pack("<Q", imm)
    RAX, RCX, RDX, RBX = 0, 1, 2, 3
    c = b""
    c += movabs(RAX, NEW_PD | 3) + movabs(RBX, PDPT + 4 * 8) + bytes([0x48, 0x89, 0x03])
    c += movabs(RAX, 4 * GiB | 0x83) + movabs(RBX, NEW_PD) + bytes([0x48, 0x89, 0x03])
    c += movabs(RAX, top_page | 0x83) + bytes([0x48, 0x89, 0x43, 0x08])  # mov [rbx+8], rax
    c += movabs(RCX, PATTERN)
    c += movabs(RBX, VA_HIGH) + bytes([0x48, 0x89, 0x0B])                 # mov [rbx], rcx
    c += movabs(RDX, VA_HIGH + 4 * MiB - 8) + bytes([0x48, 0x89, 0x0A])   # mov [rdx], rcx
    fail_jumps = []
    for load in (bytes([0x48, 0x8B, 0x03]), bytes([0x48, 0x8B, 0x02])):   # mov rax, [rbx]/[rdx]
        c += load + bytes([0x48, 0x39, 0xC8])                              # cmp rax, rcx
        c += bytes([0x75, 0])                                              # jne fail
        fail_jumps.append(len(c) - 1)
    ok = bytes([0x66, 0xBA, 0xF8, 0x03, 0xB0, ord("H"), 0xEE, 0xB0, 0x0A, 0xEE, 0xEB, 0xFE])
    c += ok
    fail_at = len(c)
    c += bytes([0xB8, 1, 0, 0, 0, 0x66, 0xBA, 0xF0, 0x04, 0xEF, 0xEB, 0xFE])
    c = bytearray(c)
    for at in fail_jumps:
        c[at] = fail_at - (at + 1)
    return bytes(c)


def ram_vmas(pid, ram):
    """The three VMAs of the RAM mapping, as (start, end, perms, flags)."""
    vmas, cur = [], None
    for line in open(f"/proc/{pid}/smaps"):
        head = line.split()
        if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            lo, hi = (int(x, 16) for x in head[0].split("-"))
            cur = [lo, hi, head[1], []]
            vmas.append(cur)
        elif line.startswith("VmFlags:") and cur:
            cur[3] = line.split()[1:]
    for i in range(len(vmas) - 2):
        a, b, c = vmas[i:i + 3]
        if (a[1] - a[0] == 3 * GiB and b[0] == a[1] and b[1] - b[0] == GiB
                and c[0] == b[1] and c[1] - c[0] == ram - 3 * GiB):
            return [a, b, c]
    return None


def vm_rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run_big_guest(d, ram_mib):
    ram = ram_mib * MiB
    kernel = tiny_guest.write_guest(d, "high", guest_code(ram))
    p = subprocess.Popen([MINIVMM, "--kernel", kernel, "--memory", str(ram_mib), "--no-stdin"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = b""
    deadline = time.monotonic() + 120
    while b"H\n" not in out and p.poll() is None and time.monotonic() < deadline:
        if select.select([p.stdout], [], [], 0.5)[0]:
            out += os.read(p.stdout.fileno(), 4096)
    report(f"{ram_mib} MiB guest wrote and read back GPA 4 GiB and the top of RAM",
           b"H\n" in out, f"console {out[-200:]!r}, exit {p.poll()}")
    if b"H\n" in out:
        vmas = ram_vmas(p.pid, ram)
        report("host mapping is 3 GiB rw, 1 GiB hole ---p, the rest rw",
               vmas is not None and [v[2] for v in vmas] == ["rw-p", "---p", "rw-p"],
               str([(hex(v[0]), hex(v[1]), v[2]) for v in vmas or []]))
        if vmas:
            report("every part of guest RAM is MADV_DONTDUMP", all("dd" in v[3] for v in vmas),
                   str([v[3] for v in vmas]))
            base = vmas[0][0]  # host address of GPA 0
            with open(f"/proc/{p.pid}/mem", "rb") as mem:
                seen = []
                for gpa in (4 * GiB, 1 * GiB + ram - 8):
                    mem.seek(base + gpa)
                    seen.append(struct.unpack("<Q", mem.read(8))[0])
            report("the pattern is in host memory at data + GPA for both addresses",
                   seen == [PATTERN, PATTERN], str([hex(s) for s in seen]))
        rss = vm_rss(p.pid)
        report(f"guest RAM is lazy: VmRSS {rss >> 20} MiB < {MAX_RSS >> 20} MiB for a "
               f"{ram_mib} MiB guest", 0 < rss < MAX_RSS)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    report("SIGTERM stops it with exit 0", p.returncode == 0, f"exit {p.returncode}")
    if failures:
        print("   log:", err.decode(errors="replace").strip()[-2000:])


def run_too_big(d, limit_mib):
    kernel = tiny_guest.write_guest(d, "spin", tiny_guest.SPIN)
    ask = limit_mib + 1024
    p = subprocess.run([MINIVMM, "--kernel", kernel, "--memory", str(ask), "--no-stdin"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    err = p.stderr.decode(errors="replace")
    report(f"{ask} MiB (host limit {limit_mib} MiB) is refused with exit 65",
           p.returncode == 65, f"exit {p.returncode}")
    report("the message names the key, the limit and why",
           f"machine.memory_mib = {ask} is more than this host allows" in err
           and f"at most {limit_mib} MiB" in err, err.strip()[-600:])


why = tiny_guest.kvm_usable()
if why:
    print(f"SKIP: needs KVM ({why})")
    sys.exit(77)
limit = host_limit_mib()
ram_mib = 16384 if limit is None else min(16384, (limit - 512) // 2 * 2)
if ram_mib < 3 * 1024 + 64:
    print(f"SKIP: the host allows only {limit} MiB of guest RAM, not enough to pass 4 GiB")
    sys.exit(77)
with tempfile.TemporaryDirectory() as d:
    run_big_guest(d, ram_mib)
    if limit is not None:
        run_too_big(d, limit)
CHECKS.exit()
