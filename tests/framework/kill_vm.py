"""Runs minivmm for the kill campaign: boot, wait for the workload, SIGKILL.

The guest console is read from minivmm's stdout pipe line by line as it
arrives (minivmm writes each console line with one write(2) from the vCPU
thread when the guest outputs the newline, vmm/host/console_output.cpp), and every
line keeps its arrival time. After the kill the pipe is drained to EOF, so the
lines kept are exactly the complete lines the guest printed before the kill;
a last line without its newline (cut by the kill) is dropped, never parsed.
Standard library only.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import threading
import time

FIRST_ACK = "agent ack "


@dataclasses.dataclass
class Run:
    rc: int | None = None          # exit code (-9 after our SIGKILL); None: never ended
    killed: bool = False           # we sent SIGKILL while it ran
    console: list[str] = dataclasses.field(default_factory=list)  # complete lines
    cut_line: str = ""             # a last line without newline, if any
    vmm_log: str = ""
    boot_s: float | None = None    # start -> first ack line
    kill_after_ack_s: float | None = None  # first ack -> SIGKILL
    error: str = ""                # why the run did not go as planned


def read_lines(pipe, on_line) -> bytes:
    """Reads `pipe` to EOF, calling on_line(line, arrival time) for each complete
    line (newline and a trailing CR stripped). Returns the cut-off last line, if any."""
    buf = b""
    while True:
        chunk = os.read(pipe.fileno(), 65536)
        if not chunk:
            return buf
        buf += chunk
        *complete, buf = buf.split(b"\n")
        now = time.monotonic()
        for raw in complete:
            on_line(raw.decode("utf-8", "replace").rstrip("\r"), now)


class _Lines(threading.Thread):
    """Reads a pipe to EOF, keeping complete lines with their arrival times."""

    def __init__(self, pipe, watch: str | None = None):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.watch = watch
        self.seen = threading.Event()
        self.seen_at: float | None = None
        self.lines: list[str] = []
        self.tail = b""

    def run(self):
        self.tail = read_lines(self.pipe, self._line)
        self.seen.set()  # EOF: wake the waiter even if the line never came

    def _line(self, line: str, now: float) -> None:
        self.lines.append(line)
        if self.watch and not self.seen.is_set() and self.watch in line:
            self.seen_at = now
            self.seen.set()


def _command(minivmm: str, kernel: str, disks: list[tuple[str, str]], cmdline: str,
             write_logs: list[str] | None = None) -> list[str]:
    cmd = [minivmm, "--kernel", kernel, "--memory", "64", "--vcpus", "1", "--no-stdin",
           "--cmdline", cmdline]
    for i, (path, mode) in enumerate(disks):
        cmd += ["--disk", f"{path},cache={mode}" + (f",write_log={write_logs[i]}" if write_logs else "")]
    return cmd


def boot_and_kill(minivmm: str, kernel: str, disks: list[tuple[str, str]], cmdline: str,
                  kill_after_s: float, boot_timeout_s: float) -> Run:
    """Boots, waits for the first `agent ack` line, SIGKILLs minivmm kill_after_s later."""
    run = Run()
    start = time.monotonic()
    proc = subprocess.Popen(_command(minivmm, kernel, disks, cmdline), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    out = _Lines(proc.stdout, watch=FIRST_ACK)
    err = _Lines(proc.stderr)
    out.start()
    err.start()
    try:
        out.seen.wait(boot_timeout_s)
        if out.seen_at is None:
            run.error = ("minivmm ended before the first ack line" if proc.poll() is not None
                         else f"no ack line within {boot_timeout_s:.0f} s")
        else:
            run.boot_s = out.seen_at - start
            deadline = out.seen_at + kill_after_s
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
            if proc.poll() is not None:
                run.error = f"minivmm ended by itself (exit code {proc.returncode}) before the kill"
            else:
                proc.send_signal(signal.SIGKILL)
                run.killed = True
                run.kill_after_ack_s = time.monotonic() - out.seen_at
    finally:
        if proc.poll() is None and not run.killed:
            proc.kill()
        run.rc = proc.wait()
        out.join(30)
        err.join(30)
    run.console = out.lines
    run.cut_line = out.tail.decode("utf-8", "replace")
    run.vmm_log = "\n".join(err.lines + ([err.tail.decode("utf-8", "replace")] if err.tail else []))
    return run


def boot_to_exit(minivmm: str, kernel: str, disks: list[tuple[str, str]], cmdline: str,
                 timeout_s: float) -> Run:
    """Boots and lets the guest end the VM (exit device); SIGKILL after timeout_s."""
    run = Run()
    start = time.monotonic()
    proc = subprocess.Popen(_command(minivmm, kernel, disks, cmdline), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    out = _Lines(proc.stdout)
    err = _Lines(proc.stderr)
    out.start()
    err.start()
    try:
        run.rc = proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        run.error = f"did not end within {timeout_s:.0f} s (killed)"
    out.join(30)
    err.join(30)
    run.boot_s = time.monotonic() - start
    run.console = out.lines
    run.cut_line = out.tail.decode("utf-8", "replace")
    run.vmm_log = "\n".join(err.lines)
    return run


def read_image(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def write_file(path: str, data: bytes | str) -> None:
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    os.chmod(path, 0o644)
