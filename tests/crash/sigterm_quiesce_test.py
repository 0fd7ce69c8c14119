#!/usr/bin/env python3
"""Graceful stop: SIGTERM once the guest has probed its
disk must end minivmm with exit code 0 and the "SIGTERM received" log line,
after draining the disk and sending one final flush. With a write log on, the
flush shows at the host level (fdatasync issued and completed, before the
final flush completion) for writeback and none, and only as a guest-level
flush with no fdatasync for unsafe. The power-loss checker must accept each
log, and the image left behind must pass the process-kill check.

The guest is the project's kernel with no init and no panic=-1, so after the
disk probe it panics and waits there for the signal.

usage: sigterm_quiesce_test.py MINIVMM VMLINUX   (tests/ on PYTHONPATH)
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

from framework import powerloss_check as pc
from framework.cache_modes import MODES, WRITE_BACK

PROBED = re.compile(rb"\[vda\] \d+ 512-byte logical blocks")
HOST_FLUSH_ISSUED, HOST_FLUSH_DONE = 3, 4
GUEST_SUBMIT, GUEST_FLUSH_COMPLETE = 16, 18
G_FLUSH = 2


def pump(stream, sink):
    while chunk := stream.read1(4096):
        sink.extend(chunk)


def run_mode(minivmm, vmlinux, mode, tmp):
    image, log, base = (os.path.join(tmp, f"{mode}.{n}") for n in ("img", "wlog", "base"))
    with open(image, "wb") as f:
        f.truncate(8 << 20)
    with open(base, "wb") as f:
        f.truncate(8 << 20)
    cmd = [minivmm, "--kernel", vmlinux, "--memory", "64", "--no-stdin",
           "--cmdline", "console=ttyS0", "--disk", f"{image},cache={mode},write_log={log}"]
    print("running:", " ".join(cmd), flush=True)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = bytearray(), bytearray()
    readers = [threading.Thread(target=pump, args=(s, b)) for s, b in ((p.stdout, out), (p.stderr, err))]
    for t in readers:
        t.start()
    failures = []
    deadline = time.monotonic() + 600
    while not PROBED.search(bytes(out)) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if not PROBED.search(bytes(out)):
        p.kill()
        p.wait()
        failures.append("the guest never probed vda")
    else:
        time.sleep(1)  # let the partition scan's reads finish: not required, but realistic
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            failures.append("no exit within 120 s of SIGTERM")
    for t in readers:
        t.join()
    sys.stdout.buffer.write(bytes(err[-1500:]))
    if failures:
        return failures
    if p.returncode != 0:
        failures.append(f"exit code {p.returncode}, want 0")
    if b"SIGTERM received" not in err:
        failures.append("no 'SIGTERM received' log line")

    header, events, truncated = pc.read_log(log)
    if header["mode"] != mode or truncated:
        failures.append(f"log header mode {header['mode']}, truncated={truncated}")
    flushes = [e for e in events if e.type == GUEST_SUBMIT and e.value == G_FLUSH]
    if not flushes:
        return failures + ["no final flush in the write log"]
    last = flushes[-1]
    tail = [e.type for e in events[last.index:]]
    if mode == "unsafe":
        want = [GUEST_SUBMIT, GUEST_FLUSH_COMPLETE]
    else:
        want = [GUEST_SUBMIT, HOST_FLUSH_ISSUED, HOST_FLUSH_DONE, GUEST_FLUSH_COMPLETE]
    if tail != want:
        failures.append(f"log after the final flush: {tail}, want {want}")
    if any(e.type == HOST_FLUSH_ISSUED for e in events) and mode == "unsafe":
        failures.append("unsafe issued an fdatasync")
    r = pc.check(log, base, image_after=image)
    if r["violations"] or r["process_kill_problems"]:
        failures.append(f"checker: {r['violations'][:2]} {r['process_kill_problems'][:2]}")
    print(f"cache={mode}: exit {p.returncode}, {len(events)} log events, final flush "
          f"{'with' if mode != 'unsafe' else 'without'} fdatasync", flush=True)
    return failures


def main():
    minivmm, vmlinux = sys.argv[1:3]
    if not os.path.exists(vmlinux):
        print(f"FAIL: guest kernel {vmlinux} not built (run scripts/build-guest.sh)")
        return 1
    failures = []
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        for mode in [m for m in MODES if m in WRITE_BACK]:
            failures += [f"cache={mode}: {f}" for f in run_mode(minivmm, vmlinux, mode, tmp)]
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
