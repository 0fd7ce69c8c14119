"""minivmm on a pseudo-terminal, as a user at a terminal runs it: the pty is
minivmm's stdin, stdout and controlling terminal (so Ctrl-C and raw mode
behave as they do for a person), Console reads what the guest prints and
types commands. Used by guest_shell_test.py and debian_shell_test.py."""
import fcntl
import os
import pty
import re
import select
import subprocess
import sys
import tempfile
import termios
import time

from framework import vm_stall


class Console:
    """The master side of minivmm's terminal: what the guest prints, what we type."""

    def __init__(self, fd, on_timeout=lambda: ""):
        # on_timeout: what to add to a timeout's message (a stall diagnosis)
        self.fd, self.buf, self.on_timeout = fd, b"", on_timeout

    def read_until(self, pattern, timeout):
        rx = re.compile(pattern) if isinstance(pattern, bytes) else pattern
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                out, self.buf = self.buf[:m.end()], self.buf[m.end():]
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {rx.pattern!r} within {timeout}s{self.on_timeout()}; "
                                   f"console tail: {self.buf[-600:]!r}")
            r, _, _ = select.select([self.fd], [], [], min(left, 1))
            if r:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:  # EIO: the other side has gone
                    data = b""
                if not data:
                    raise EOFError(f"console closed; tail: {self.buf[-600:]!r}")
                sys.stdout.write(data.decode(errors="replace"))
                sys.stdout.flush()
                self.buf += data

    def run(self, command, timeout=120):
        """Types a command; returns what it printed (between two unique markers)."""
        tag = f"{time.monotonic_ns() % 1000000:06d}"
        os.write(self.fd, f"echo B{tag}; {command}; echo E{tag} $?\r".encode())
        # The markers are matched at line starts so the echoed command line does not count.
        out = self.read_until(rb"\nE" + tag.encode() + rb" (\d+)\r*\n", timeout)
        body = out.split(b"\nB" + tag.encode(), 1)[-1]
        status = int(re.search(rb"\nE" + tag.encode() + rb" (\d+)", out).group(1))
        text = body.rsplit(b"\nE" + tag.encode(), 1)[0].decode(errors="replace").replace("\r", "")
        if status != 0:
            raise AssertionError(f"guest command {command!r} exited {status}: {text}")
        return text.strip()


class PtyVm:
    """One minivmm process on a fresh pty; its log (stderr) goes to a temporary file."""

    def __init__(self, cmd, env=None):
        self.master, self.slave = pty.openpty()
        self.before = termios.tcgetattr(self.slave)
        print("+", " ".join(cmd), flush=True)

        def controlling_tty():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdin=self.slave, stdout=self.slave, stderr=self.log, env=env,
                                     preexec_fn=controlling_tty)
        self.console = Console(self.master, lambda: self._stall_verdict("console wait"))

    def _log_text(self):
        return os.pread(self.log.fileno(), 1 << 24, 0).decode(errors="replace")

    def _stall_verdict(self, label):
        """Why minivmm made no progress, if it still runs (vm_stall.after_timeout)."""
        verdict = vm_stall.after_timeout(self.proc, self._log_text, label)
        return f" (minivmm still running: {verdict})" if verdict else ""

    def type(self, text):
        os.write(self.master, text)

    def finish(self, label, failures, timeout=120):
        """Waits for the exit; checks exit 0 and the terminal's settings restored; returns minivmm's log."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            why = self._stall_verdict(label)
            self.proc.kill()
            rc = self.proc.wait()
            failures.append(f"{label}: minivmm did not exit within {timeout}s{why}")
        after = termios.tcgetattr(self.slave)
        if after != self.before:
            failures.append(f"{label}: terminal settings not restored: before {self.before}, after {after}")
        os.close(self.master)
        os.close(self.slave)
        self.log.seek(0)
        text = self.log.read().decode(errors="replace")
        if rc != 0:
            failures.append(f"{label}: minivmm exited {rc}, want 0; log tail:\n{text[-1500:]}")
        print(f"{label}: minivmm exit {rc}, terminal {'restored' if after == self.before else 'NOT restored'}")
        return text


def verdict(failures):
    """Prints every failure and PASS or the count; the exit status."""
    for f in failures:
        print("FAIL:", f)
    print("PASS" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0
