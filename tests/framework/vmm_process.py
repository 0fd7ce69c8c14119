"""A running minivmm whose log (stderr) is collected while the test acts on it.

minivmm logs to stderr (spdlog, set up in vmm/main.cpp); a test that
signals or waits on a live process reads that log as it grows, so a thread
drains the pipe (a full pipe would block minivmm's logging) into text the
test polls.
"""
from __future__ import annotations

import subprocess
import threading
import time
from typing import Callable


class StderrLog:
    """Everything `proc` wrote to its stderr pipe so far, read on a thread."""

    def __init__(self, proc: subprocess.Popen):
        self._parts: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, args=(proc.stderr,), daemon=True)
        self._thread.start()

    def _drain(self, stream) -> None:
        for raw in stream:
            with self._lock:
                self._parts.append(raw.decode(errors="replace"))

    def text(self) -> str:
        with self._lock:
            return "".join(self._parts)

    def lines(self) -> list[str]:
        return self.text().splitlines()

    def join(self, timeout: float = 5) -> None:
        """Wait for the pipe's end (after the process exited) so text() is complete."""
        self._thread.join(timeout)


def start(minivmm: str, args: list[str], stdin=subprocess.DEVNULL) -> tuple[subprocess.Popen, StderrLog]:
    """minivmm ARGS with stdout discarded and stderr collected."""
    proc = subprocess.Popen([minivmm, *args], stdin=stdin, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    return proc, StderrLog(proc)


def wait_until(pred: Callable[[], bool], proc: subprocess.Popen, timeout: float,
               poll: float = 0.05) -> bool:
    """pred() once it holds, or its value at the timeout or when proc exits
    (after a moment for the log reader to catch up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        if proc.poll() is not None:
            time.sleep(0.2)
            return pred()
        time.sleep(poll)
    return pred()
