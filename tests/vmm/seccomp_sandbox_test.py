#!/usr/bin/env python3
"""The real minivmm runs sandboxed, on real KVM with a tiny
guest, a disk and a pipe as stdin (so the console thread runs):
- by default every minivmm thread (main, signal watcher, io loop, console,
  vCPUs) is in seccomp filter mode with exactly one filter (its own kind's:
  a second, inherited one would mean a thread got the main thread's filter
  on top) and no_new_privs; kernel threads KVM or io_uring attach to the
  process (kvm-*, iou-*) are not minivmm's and are ignored;
- the sandboxed run stops cleanly: SIGTERM, disk quiesce and final flush,
  teardown, exit 0 (a syscall missing from a list would end it with 78);
- --no-seccomp and `[debug] seccomp = false` turn it off (Seccomp: 0).
That each kind's filter refuses what it must is tests/vmm/host/seccomp_filter_test.cpp.
usage: seccomp_sandbox_test.py MINIVMM"""
import os
import signal
import subprocess
import sys
import tempfile
import time

from framework.checklist import Checklist
from framework import tiny_guest

MINIVMM = sys.argv[1]
EXPECTED_THREADS = {"minivmm", "minivmm-signal", "minivmm-io", "minivmm-console",
                    "minivmm-vcpu0", "minivmm-vcpu1"}
CHECKS = Checklist()
report = CHECKS.report
failures = CHECKS.failures


def threads(pid):
    """{comm: (Seccomp, Seccomp_filters, NoNewPrivs)} of the process's minivmm threads."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            comm = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/task/{tid}/status")
                          if ":" in line)
        except FileNotFoundError:
            continue
        if comm.startswith("minivmm"):
            out[comm] = tuple(status.get(k, "?").strip()
                              for k in ("Seccomp", "Seccomp_filters", "NoNewPrivs"))
    return out


def run(d, label, extra, want_mode):
    kernel = tiny_guest.write_guest(d, "spin", tiny_guest.SPIN)
    disk = tiny_guest.write_disk(d)
    r, w = os.pipe()  # stdin stays open: the console thread keeps running
    p = subprocess.Popen([MINIVMM, "--kernel", kernel, "--vcpus", "2", "--disk", disk, *extra],
                         stdin=r, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(r)
    deadline = time.monotonic() + 30
    seen = {}
    while time.monotonic() < deadline and p.poll() is None:
        seen = threads(p.pid)
        if set(seen) >= EXPECTED_THREADS and all(v[0] == want_mode for v in seen.values()):
            break
        time.sleep(0.1)
    time.sleep(0.5)  # the guest keeps running under the filters
    alive = p.poll() is None
    p.send_signal(signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    os.close(w)
    log = err.decode(errors="replace")
    report(f"{label}: all threads seen", set(seen) >= EXPECTED_THREADS, f"{sorted(seen)}")
    if want_mode == "2":
        bad = {k: v for k, v in seen.items() if v != ("2", "1", "1")}
        report(f"{label}: each thread has exactly its own filter and no_new_privs", not bad,
               f"{bad or 'Seccomp: 2, Seccomp_filters: 1, NoNewPrivs: 1 in ' + str(len(seen))}")
        report(f"{label}: logged", "seccomp sandbox on" in log)
    else:
        bad = {k: v for k, v in seen.items() if v[0] != "0"}
        report(f"{label}: no thread filtered", not bad, str(bad))
        report(f"{label}: nothing logged", "seccomp sandbox on" not in log)
    report(f"{label}: ran, then stopped cleanly", alive and p.returncode == 0
           and "disk 0 stats:" in log and "seccomp:" not in log, f"exit {p.returncode}")
    if failures:
        print("   log:", log.strip()[-1500:])


why = tiny_guest.kvm_usable()
if why:
    print(f"SKIP: needs KVM ({why})")
    sys.exit(77)
with tempfile.TemporaryDirectory() as d:
    run(d, "default", [], "2")
    run(d, "--no-seccomp", ["--no-seccomp"], "0")
    cfg = os.path.join(d, "off.toml")
    with open(cfg, "w") as f:
        f.write("[debug]\nseccomp = false\n")
    run(d, "[debug] seccomp = false", ["--config", cfg], "0")
CHECKS.exit()
