#!/usr/bin/env python3
"""vm_stall.diagnose on a real minivmm: the ring lines SIGUSR1 logs and the
vCPU threads' guest time, from tiny guests that drive the virtio-blk device
themselves (virtio 1.x 4.2.3 initialisation over MMIO, one read request):
- the guest publishes the request and never notifies, then halts: the ring
  shows a chain published and never taken (the shape of a device that lost a
  notification), classified a minivmm hang;
- the guest publishes and notifies, then halts: the device answers, nothing
  is pending and the vCPU is idle, so there is no evidence either way
  (unknown), and the request completed (used_idx=1);
- the guest spins (`jmp $`) with no device set up: where guest code runs in
  guest mode (hardware virtualization, the nested sandbox) its vCPU thread's
  guest time rises with the clock, the shape of a sandbox stall. On PVM the
  guest's kernel-mode code is emulated by the host kernel and counts as
  system time, so there the check is that it is not called a stall.
The device's adaptive polling is off (machine.io_poll_us = 0) so an
un-notified chain stays untaken.
usage: stall_evidence_test.py MINIVMM"""
import os
import struct
import sys
import tempfile
import time

from framework.checklist import Checklist
from framework import tiny_guest
from framework import vm_stall
from framework import vmm_log
from framework import vmm_process

MINIVMM = sys.argv[1]
PVM = os.path.exists("/sys/module/kvm_pvm") or not any(
    f in open("/proc/cpuinfo").read() for f in (" vmx", " svm"))
CHECKS = Checklist()
report = CHECKS.report
failures = CHECKS.failures

MMIO = 0xd0000000  # disk 0's virtio-mmio window (vmm/x86_64/memory_layout.h)
QUEUE_SIZE = 16
DESC, AVAIL, USED = 0x1100000, 0x1101000, 0x1102000  # rings, above the code at 0x1000000
HEADER, DATA, STATUS = 0x1103000, 0x1104000, 0x1105000
HLT_LOOP = bytes([0xf4, 0xeb, 0xfd])  # hlt; jmp hlt (interrupts off: halted for good)


def mmio32(offset, value):
    """mov dword [rdi + offset], value"""
    return bytes([0xc7, 0x87]) + struct.pack("<iI", offset, value)


def ram64(addr, value):
    """mov qword [rsi + addr], value (sign-extended imm32; rsi = 0)"""
    return bytes([0x48, 0xc7, 0x86]) + struct.pack("<iI", addr, value)


def ram32(addr, value):
    return bytes([0xc7, 0x86]) + struct.pack("<iI", addr, value)


def ram16(addr, value):
    return bytes([0x66, 0xc7, 0x86]) + struct.pack("<iH", addr, value)


def descriptor(index, addr, length, flags, nxt):
    base = DESC + 16 * index
    return ram64(base, addr) + ram32(base + 8, length) + ram16(base + 12, flags) + ram16(base + 14, nxt)


def virtio_read_guest(notify):
    """Sets up queue 0 of disk 0, publishes a one-sector read, optionally
    notifies, halts."""
    code = bytes([0x48, 0xbf]) + struct.pack("<Q", MMIO)  # mov rdi, MMIO
    code += bytes([0x31, 0xf6])                             # xor esi, esi
    code += mmio32(0x070, 0) + mmio32(0x070, 1) + mmio32(0x070, 3)  # reset, ACKNOWLEDGE, DRIVER
    code += mmio32(0x024, 1) + mmio32(0x020, 1)  # features 32..63: VERSION_1
    code += mmio32(0x024, 0) + mmio32(0x020, 0)
    code += mmio32(0x070, 11)                    # FEATURES_OK
    code += mmio32(0x030, 0) + mmio32(0x038, QUEUE_SIZE)
    code += mmio32(0x080, DESC) + mmio32(0x084, 0) + mmio32(0x090, AVAIL) + mmio32(0x094, 0)
    code += mmio32(0x0a0, USED) + mmio32(0x0a4, 0) + mmio32(0x044, 1)  # QueueReady
    code += mmio32(0x070, 15)                    # DRIVER_OK
    code += ram32(HEADER, 0) + ram32(HEADER + 4, 0) + ram64(HEADER + 8, 0)  # IN, sector 0
    code += descriptor(0, HEADER, 16, 1, 1)      # NEXT
    code += descriptor(1, DATA, 512, 3, 2)       # NEXT | WRITE
    code += descriptor(2, STATUS, 1, 2, 0)       # WRITE
    code += ram16(AVAIL + 4, 0) + ram16(AVAIL + 2, 1)  # ring[0] = head 0, then idx = 1
    if notify:
        code += mmio32(0x050, 0)                 # QueueNotify
    return code + HLT_LOOP


class Vmm:
    def __init__(self, d, name, code):
        kernel = tiny_guest.write_guest(d, name, code)
        disk = tiny_guest.write_disk(d, name + ".img")
        config = os.path.join(d, name + ".toml")
        with open(config, "w") as f:
            f.write(f'[machine]\nio_poll_us = 0\n[kernel]\npath = "{kernel}"\n'
                    f'[[disk]]\npath = "{disk}"\ncache = "writeback"\n')
        self.p, self.err = vmm_process.start(MINIVMM, ["--config", config, "--no-stdin"])

    def log(self):
        return self.err.text()

    def started(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.p.poll() is None:
            if "first KVM_RUN" in self.log():
                time.sleep(2)  # the guest's few instructions (emulated on PVM)
                return True
            time.sleep(0.1)
        return False

    def stop(self):
        self.p.kill()
        self.p.wait()
        self.err.join(5)


def case(d, name, code, check):
    vmm = Vmm(d, name, code)
    try:
        if not vmm.started():
            report(f"{name}: guest started", False, vmm.log()[-1500:])
            return
        verdict = vm_stall.diagnose(vmm.p.pid, vmm.log)
        rings = vmm_log.parse_rings(vmm.log())
        check(verdict, rings[-1] if rings else None)
    finally:
        vmm.stop()


def published_not_taken(verdict, ring):
    report("published, not notified: the ring shows the chain untaken",
           ring is not None and ring.ready and ring.avail_idx == 1 and ring.last_avail == 0
           and ring.loop_answered, str(ring))
    report("published, not notified: classified a minivmm hang",
           verdict.kind == vm_stall.MINIVMM_HANG and "not taken by the device" in str(verdict),
           str(verdict))


def notified_and_answered(verdict, ring):
    report("notified: the device took and answered the request",
           ring is not None and ring.avail_idx == 1 and ring.last_avail == 1
           and ring.used_idx == 1 and ring.in_flight == 0, str(ring))
    report("notified, guest halted: no evidence either way (unknown)",
           verdict.kind == vm_stall.UNKNOWN, str(verdict))


def spinning(verdict, ring):
    if PVM:
        report("spinning guest on PVM (emulated, not guest mode): not called a sandbox stall",
               verdict.kind != vm_stall.SANDBOX_STALL, str(verdict))
    else:
        report("spinning guest in guest mode, no disk work: classified a sandbox stall",
               verdict.kind == vm_stall.SANDBOX_STALL and "minivmm-vcpu0" in str(verdict),
               str(verdict))


why = tiny_guest.kvm_usable()
if why:
    print(f"SKIP: needs KVM ({why})")
    sys.exit(77)
with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as d:
    case(d, "published", virtio_read_guest(notify=False), published_not_taken)
    case(d, "notified", virtio_read_guest(notify=True), notified_and_answered)
    case(d, "spin", tiny_guest.SPIN, spinning)
CHECKS.exit()
