#!/usr/bin/env python3
"""SIGINT/SIGTERM, on real KVM with tiny guests: the first signal stops
gracefully (exit 0); when that stop hangs, a second one forces the exit (exit
code 77, a log line saying so, terminal restored). Two hangs a signal must break:
- in set-up: the disk's write log is a FIFO nobody opens, so opening it
  blocks (as a hung network disk would);
- in the graceful stop: the write log is a FIFO whose pipe the test fills,
  so the final flush's log record blocks the I/O thread and the quiesce
  waits for it (as a drain that never ends would).
usage: stop_signals_test.py MINIVMM"""
import errno
import os
import pty
import signal
import subprocess
import sys
import tempfile
import termios
import time

from framework.checklist import Checklist
from framework import tiny_guest
from framework import vmm_process

MINIVMM = sys.argv[1]
FORCED = 77  # exit_code::kForcedStop
CHECKS = Checklist()
report = CHECKS.report
failures = CHECKS.failures


class Vmm:
    """minivmm on a spin guest with a pty as stdin, stderr collected."""

    def __init__(self, d, disk_spec):
        kernel = tiny_guest.write_guest(d, "spin", tiny_guest.SPIN)
        self.master, self.slave = pty.openpty()
        self.termios_before = termios.tcgetattr(self.slave)
        self.p, self.err = vmm_process.start(MINIVMM, ["--kernel", kernel, "--disk", disk_spec],
                                             stdin=self.slave)

    def wait_log(self, text, timeout=30):
        return vmm_process.wait_until(lambda: text in self.err.text(), self.p, timeout)

    def alive_after(self, seconds):
        try:
            self.p.wait(timeout=seconds)
            return False
        except subprocess.TimeoutExpired:
            return True

    def finish(self, timeout=20):
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None
        finally:
            self.err.join(5)
        return self.p.returncode

    def terminal_restored(self):
        ok = termios.tcgetattr(self.slave) == self.termios_before
        os.close(self.slave)
        os.close(self.master)
        return ok

    def log(self):
        return self.err.text()


def check_forced(label, vmm):
    vmm.p.send_signal(signal.SIGTERM)
    if not vmm.alive_after(2):
        report(f"{label}: the first SIGTERM's stop hangs (the scenario)", False,
               f"exited {vmm.p.returncode} instead; log: {vmm.log()[-800:]}")
        vmm.terminal_restored()
        return
    vmm.p.send_signal(signal.SIGTERM)
    code = vmm.finish()
    report(f"{label}: second SIGTERM forces the exit", code == FORCED, f"exit {code}")
    report(f"{label}: logged", "second SIGTERM received: forcing the exit" in vmm.log())
    report(f"{label}: terminal restored", vmm.terminal_restored())
    if code != FORCED:
        print("   log:", vmm.log().strip()[-1500:])


def hang_in_setup(d):
    fifo = os.path.join(d, "setup.fifo")
    os.mkfifo(fifo)
    vmm = Vmm(d, tiny_guest.write_disk(d) + ",write_log=" + fifo)
    time.sleep(1)  # minivmm blocks opening the FIFO for writing: no reader
    check_forced("hang in set-up", vmm)


def hang_in_stop(d):
    fifo = os.path.join(d, "stop.fifo")
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets minivmm's open() return
    vmm = Vmm(d, tiny_guest.write_disk(d, "stop.img") + ",write_log=" + fifo)
    if not vmm.wait_log("first KVM_RUN"):
        report("hang in stop: guest started", False, vmm.log()[-800:])
        return
    filler = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    try:
        while True:
            os.write(filler, b"\0" * 4096)  # until the pipe is full
    except OSError as e:
        assert e.errno == errno.EAGAIN, e
    check_forced("hang in stop", vmm)
    os.close(filler)
    os.close(reader)


def first_signal_graceful(d):
    for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
        vmm = Vmm(d, tiny_guest.write_disk(d, "graceful.img"))
        vmm.wait_log("first KVM_RUN")
        vmm.p.send_signal(sig)
        code = vmm.finish()
        log = vmm.log()
        report(f"one {name}: graceful stop, exit 0",
               code == 0 and f"{name} received" in log and "disk 0 stats:" in log, f"exit {code}")
        report(f"one {name}: terminal restored", vmm.terminal_restored())


why = tiny_guest.kvm_usable()
if why:
    print(f"SKIP: needs KVM ({why})")
    sys.exit(77)
# FIFOs need a local file system: /tmp may be a 9p share (nested-KVM sandbox).
with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as d:
    first_signal_graceful(d)
    hang_in_setup(d)
    hang_in_stop(d)
CHECKS.exit()
