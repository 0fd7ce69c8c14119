#!/usr/bin/env python3
"""What CPUID answers inside the guest (vmm/kvm/cpuid.h), read by a tiny
hand-assembled guest on vCPU 0 (no kernel needed, so it runs on PVM in
seconds): it executes CPUID for a list of leaves, writes each EAX, EBX, ECX,
EDX as 4 little-endian bytes to COM1, and exits through port 0x4f0.

Checked for 1 and 3 vCPUs: leaf 1's APIC id, logical count and HTT, the
hypervisor bit; leaf 0xB's SMT and core levels (when offered); no PMU (leaf
0xA zero, no PDCM); AMD's core count and APIC id size; XSAVE either offered
with consistent sizes or, where minivmm hides it (PVM, QEMU's software
emulator as host), absent with leaf 0xD zero; on PVM, no PV hypercall
features. Exit code 77: skipped (no KVM).

On PVM the guest's CPUID does not answer leaf 1 ECX/EDX and leaf 0xD from
KVM_SET_CPUID2 (measured: the host's feature bits, XSAVE and HTT included,
and leaf 0xD with EBX for XCR0 = x87, whatever minivmm set), which is why
minivmm also passes `noxsave` there (pvm_quirks.h); those checks are skipped
on PVM, the others hold.

usage: guest_cpuid_test.py MINIVMM
"""
import struct
import subprocess
import sys
import tempfile

from framework.tiny_guest import kvm_usable, write_guest

LEAVES = [(0, 0), (1, 0), (0xa, 0), (0xb, 0), (0xb, 1), (0xd, 0), (0xd, 1), (0xd, 2),
          (0x80000000, 0), (0x80000008, 0), (0x8000001e, 0), (0x40000000, 0), (0x40000001, 0)]


def cpuid_dump_code():
    code = b""
    for leaf, sub in LEAVES:
        code += b"\xb8" + struct.pack("<I", leaf)  # mov eax, leaf
        code += b"\xb9" + struct.pack("<I", sub)  # mov ecx, subleaf
        code += b"\x0f\xa2"  # cpuid
        code += b"\x41\x89\xc0\x41\x89\xd9\x41\x89\xca\x41\x89\xd3"  # mov r8d..r11d, eax..edx
        for mov_eax_from in (b"\x44\x89\xc0", b"\x44\x89\xc8", b"\x44\x89\xd0", b"\x44\x89\xd8"):
            code += mov_eax_from + b"\x66\xba\xf8\x03"  # mov eax, rNd; mov dx, 0x3f8 (COM1)
            code += b"\xee\xc1\xe8\x08" * 4  # 4 x (out dx, al; shr eax, 8)
    code += b"\x31\xc0\x66\xba\xf0\x04\xef"  # xor eax, eax; mov dx, 0x4f0; out dx, eax
    code += b"\xeb\xfe"  # jmp $
    return code


def read_cpuid(minivmm, guest, vcpus):
    p = subprocess.run([minivmm, "--kernel", guest, "--vcpus", str(vcpus), "--no-stdin"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    log = p.stderr.decode(errors="replace")
    if p.returncode != 0 or len(p.stdout) != 16 * len(LEAVES):
        raise AssertionError(f"{vcpus} vCPUs: exit {p.returncode}, {len(p.stdout)} console bytes "
                             f"(want {16 * len(LEAVES)}); log tail:\n{log[-1500:]}")
    regs = {}
    for i, key in enumerate(LEAVES):
        regs[key] = struct.unpack_from("<4I", p.stdout, 16 * i)
    return regs, log


def check(regs, log, vcpus, failures):
    def fail(what):
        failures.append(f"{vcpus} vCPU(s): {what}")

    max_leaf = regs[(0, 0)][0]
    vendor = struct.pack("<3I", regs[(0, 0)][1], regs[(0, 0)][3], regs[(0, 0)][2]).decode(errors="replace")
    eax, ebx, ecx, edx = regs[(1, 0)]
    print(f"{vcpus} vCPU(s): vendor {vendor}, max leaf {max_leaf:#x}, leaf 1 EBX {ebx:#010x} "
          f"ECX {ecx:#010x} EDX {edx:#010x}")
    if ebx >> 24 != 0:
        fail(f"vCPU 0's APIC id (leaf 1 EBX[31:24]) is {ebx >> 24}")
    if (ebx >> 16) & 0xff != vcpus:
        fail(f"leaf 1 logical processor count is {(ebx >> 16) & 0xff}")
    pvm = "PVM host:" in log
    if not pvm and bool(edx & (1 << 28)) != (vcpus > 1):
        fail(f"HTT is {bool(edx & (1 << 28))}")
    if not ecx & (1 << 31):
        fail("hypervisor bit clear")
    if not pvm and ecx & (1 << 15):
        fail("PDCM (a PMU MSR) offered")
    if max_leaf >= 0xa and any(regs[(0xa, 0)]):
        fail(f"leaf 0xA (PMU) is {[hex(r) for r in regs[(0xa, 0)]]}")
    if max_leaf >= 0xb and regs[(0xb, 0)][1]:
        smt, core = regs[(0xb, 0)], regs[(0xb, 1)]
        width = (vcpus - 1).bit_length()
        if (smt[0], smt[1], smt[2] >> 8 & 0xff, smt[3]) != (0, 1, 1, 0):
            fail(f"leaf 0xB SMT level {[hex(r) for r in smt]}")
        if (core[0], core[1], core[2] >> 8 & 0xff, core[3]) != (width, vcpus, 2, 0):
            fail(f"leaf 0xB core level {[hex(r) for r in core]}, want shift {width}, {vcpus} cores")
    if vendor in ("AuthenticAMD", "HygonGenuine") and regs[(0x80000000, 0)][0] >= 0x80000008:
        want = ((vcpus - 1).bit_length() << 12) | (vcpus - 1)
        if regs[(0x80000008, 0)][2] != want:
            fail(f"0x80000008 ECX {regs[(0x80000008, 0)][2]:#x}, want {want:#x}")
    hidden = "guest XSAVE hidden" in log
    xsave = bool(ecx & (1 << 26))
    if pvm:
        print(f"{vcpus} vCPU(s): PVM: leaf 1 ECX/EDX and leaf 0xD not checked (the host's)")
    elif hidden:
        if xsave or ecx & (1 << 28):
            fail("XSAVE or AVX offered where minivmm hides XSAVE")
        if max_leaf >= 0xd and any(any(regs[(0xd, s)]) for s in range(3)):
            fail("leaf 0xD not zero with XSAVE hidden")
    elif xsave:
        sub0, avx = regs[(0xd, 0)], regs[(0xd, 2)]
        if sub0[0] & 3 != 3:
            fail(f"leaf 0xD XCR0 mask {sub0[0]:#x} lacks x87/SSE")
        if sub0[0] & 4 and sub0[2] < avx[1] + avx[0]:
            fail(f"leaf 0xD ECX {sub0[2]} smaller than the AVX component's end {avx[1] + avx[0]}")
    if pvm and regs[(0x40000000, 0)][0] >= 0x40000001:
        hypercalls = regs[(0x40000001, 0)][0] & ((1 << 7) | (1 << 9) | (1 << 11) | (1 << 13))
        if hypercalls:
            fail(f"PV hypercall features {hypercalls:#x} offered on PVM")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    reason = kvm_usable()
    if reason:
        print("SKIP:", reason)
        return 77
    failures = []
    with tempfile.TemporaryDirectory() as d:
        guest = write_guest(d, "cpuid_dump", cpuid_dump_code())
        for vcpus in (1, 3):
            try:
                regs, log = read_cpuid(sys.argv[1], guest, vcpus)
            except (AssertionError, subprocess.TimeoutExpired) as e:
                failures.append(str(e))
                continue
            check(regs, log, vcpus, failures)
    for f in failures:
        print("FAIL:", f)
    print("PASS" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
