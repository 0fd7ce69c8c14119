#!/usr/bin/env python3
"""Console output never kills or stalls minivmm, on real
KVM with a tiny guest that prints console lines forever:
- reader gone: stdout is a pipe whose reader closes after 100 bytes
  (`minivmm | head -c 100`). minivmm must not die of SIGPIPE (exit 141, or
  -13 here); it logs the EPIPE, stops the guest gracefully (the disk's final
  flush and stats line: the quiesce ran), exits 0 and restores the terminal
  (stdin is a pty, which minivmm puts in raw mode).
- stdout closed at start (`minivmm >&-`): fd 1 must not be reused for a
  file minivmm opens (console output would land in it); it is /dev/null.
- reader stuck: stdout is a pipe nobody reads. The vCPU must not block in
  write(2) for good: minivmm warns that it drops output, and SIGTERM still
  stops it promptly with exit code 0.
- serial log: an existing log file is replaced by this run's console.
usage: console_output_test.py MINIVMM"""
import fcntl
import os
import pty
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time

from framework.checklist import Checklist
from framework import tiny_guest

MINIVMM = sys.argv[1]
MAX_STALL_S = 1  # ConsoleOutput::kMaxStall
CHECKS = Checklist()
report = CHECKS.report
failures = CHECKS.failures


class Stderr:
    """Collects a process's stderr on a thread; wait_for() polls it."""

    def __init__(self, p):
        self.text = b""
        self.t = threading.Thread(target=self._read, args=(p,), daemon=True)
        self.t.start()

    def _read(self, p):
        for line in p.stderr:
            self.text += line

    def wait_for(self, what, timeout=120):
        deadline = time.monotonic() + timeout
        while what.encode() not in self.text and time.monotonic() < deadline:
            time.sleep(0.05)
        return what.encode() in self.text

    def log(self):
        self.t.join(10)
        return self.text.decode(errors="replace")


def reader_gone(d):
    kernel = tiny_guest.write_guest(d, "flood", tiny_guest.CONSOLE_FLOOD)
    disk = tiny_guest.write_disk(d)
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    r, w = os.pipe()
    p = subprocess.Popen([MINIVMM, "--kernel", kernel, "--disk", disk], stdin=slave, stdout=w,
                         stderr=subprocess.PIPE)
    os.close(w)
    got = b""
    while len(got) < 100:
        chunk = os.read(r, 100 - len(got))
        if not chunk:
            break
        got += chunk
    os.close(r)  # the reader goes away, as `head -c 100` does
    try:
        _, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        report("reader gone: exits", False, "still running 60 s after the reader closed")
        return
    log = err.decode(errors="replace")
    after = termios.tcgetattr(slave)
    os.close(slave)
    os.close(master)
    report("reader gone: console output arrived", got.startswith(b"x\n"), repr(got[:10]))
    report("reader gone: not killed by SIGPIPE", p.returncode not in (141, -signal.SIGPIPE),
           f"exit {p.returncode}")
    report("reader gone: exit code 0", p.returncode == 0, f"exit {p.returncode}")
    report("reader gone: EPIPE logged", "the reader has gone (EPIPE)" in log)
    report("reader gone: graceful stop (final flush, disk stats)",
           "disk 0 stats:" in log and "fdatasyncs=1" in log and "reader went away" in log)
    report("reader gone: terminal restored", after == before)
    if failures:
        print("   log:", log.strip()[-1500:])


def reader_stuck(d):
    kernel = tiny_guest.write_guest(d, "flood", tiny_guest.CONSOLE_FLOOD)
    r, w = os.pipe()  # nobody reads r: the pipe fills up
    # One page instead of 64 KiB: full after 2048 lines, not 32768, so the
    # wait below does not depend on how fast nested exits are today.
    fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)
    p = subprocess.Popen([MINIVMM, "--kernel", kernel, "--no-stdin"], stdin=subprocess.DEVNULL,
                         stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    err = Stderr(p)
    # The pipe fills (slow where exits are emulated), then the vCPU waits
    # MAX_STALL_S once and drops.
    warned = err.wait_for("dropping guest console output")
    time.sleep(MAX_STALL_S)  # and keeps dropping without waiting again
    started = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    took = time.monotonic() - started
    text = err.log()
    os.close(r)
    report("reader stuck: SIGTERM stops it", p.returncode == 0 and took < 10,
           f"exit {p.returncode} after {took:.1f} s")
    report("reader stuck: drop warned", warned)
    report("reader stuck: graceful stop logged", "SIGTERM received" in text)
    if failures:
        print("   log:", text.strip()[-1500:])


def serial_log_replaced(d):
    """An existing serial log is emptied once it is known to be a regular
    file, then holds this run's console only."""
    # mov dx, 0x3f8; mov al, 'x'; out dx, al; mov al, '\n'; out dx, al;
    # mov dx, 0x4f0; xor eax, eax; out dx, eax (exit device: status 0); jmp $
    code = bytes([0x66, 0xba, 0xf8, 0x03, 0xb0, 0x78, 0xee, 0xb0, 0x0a, 0xee,
                  0x66, 0xba, 0xf0, 0x04, 0x31, 0xc0, 0xef, 0xeb, 0xfe])
    kernel = tiny_guest.write_guest(d, "one_line", code)
    log = os.path.join(d, "console.log")
    with open(log, "wb") as f:
        f.write(b"the last run's console, longer than this one's\n" * 100)
    p = subprocess.run([MINIVMM, "--kernel", kernel, "--no-stdin", "--serial-log", log],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    with open(log, "rb") as f:
        text = f.read()
    report("serial log: holds this run's console only", text == b"x\n" and p.returncode == 0,
           f"exit {p.returncode}, log {text[:60]!r}")


def stdout_closed(d):
    kernel = tiny_guest.write_guest(d, "flood", tiny_guest.CONSOLE_FLOOD)
    disk = tiny_guest.write_disk(d, "closed.img")
    p = subprocess.Popen([MINIVMM, "--kernel", kernel, "--disk", disk, "--no-stdin"],
                         stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         preexec_fn=lambda: os.close(1))
    err = Stderr(p)
    err.wait_for("first KVM_RUN")  # set-up done: every fd minivmm needs is open
    try:
        target = os.readlink(f"/proc/{p.pid}/fd/1")
    except OSError as e:
        target = str(e)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    err.log()
    with open(disk, "rb") as f:
        untouched = f.read() == bytes(1 << 20)
    report("stdout closed: fd 1 is /dev/null", target == "/dev/null", target)
    report("stdout closed: disk image untouched, exit 0", untouched and p.returncode == 0,
           f"exit {p.returncode}")


why = tiny_guest.kvm_usable()
if why:
    print(f"SKIP: needs KVM ({why})")
    sys.exit(77)
with tempfile.TemporaryDirectory() as d:
    reader_gone(d)
    reader_stuck(d)
    serial_log_replaced(d)
    stdout_closed(d)
CHECKS.exit()
