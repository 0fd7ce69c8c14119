#!/usr/bin/env python3
"""SIGUSR1 logs every disk's stats line while the VM runs (README, disks),
on real KVM with a tiny spin guest and two disks in different cache modes:
- each SIGUSR1 logs one `disk N stats: ...` line per disk, with the exit
  line's prefix and the durability fields (at_risk_bytes, at_risk_requests,
  flush_p50_us, flush_p99_us, flush_max_us), and stops nothing;
- then one `ring disk=N queue=M ...` line per virtio-blk queue (not set up
  by this guest: ready=0), the I/O loop answering (io_loop=ok);
- it works under the seccomp sandbox (the default) and without it;
- the exit stats line carries the same fields; the final flush on the
  writeback disk is in its flush latency.
usage: disk_stats_signal_test.py MINIVMM"""
import os
import signal
import subprocess
import sys
import tempfile
import time

from framework.checklist import Checklist
from framework import tiny_guest
from framework import vmm_log
from framework import vmm_process

MINIVMM = sys.argv[1]
CHECKS = Checklist()
report = CHECKS.report
failures = CHECKS.failures
# The stats line's fields, in the order minivmm logs them (storage/disk_stats.cpp).
STATS_FIELDS = ["reads", "writes", "dsync_writes", "batched_durable_writes", "flush_requests",
                "fdatasyncs", "discards", "write_zeroes", "at_risk_bytes", "at_risk_requests",
                "flush_p50_us", "flush_p99_us", "flush_max_us"]


def idle_ring(r):
    """A queue this guest never set up, its I/O loop answering."""
    return (not r.ready and r.avail_idx == r.last_avail == r.used_idx == r.in_flight == 0
            and not r.needs_reset and r.loop_answered)


class Vmm:
    def __init__(self, args):
        self.p, self.err = vmm_process.start(MINIVMM, args)

    def stats_lines(self):
        return [st for st in map(vmm_log.parse_stats_line, self.err.lines())
                if st and list(st.counters) == STATS_FIELDS]

    def ring_lines(self):
        return [r for r in vmm_log.parse_rings(self.err.text()) if idle_ring(r)]

    def wait(self, pred, timeout=30):
        return vmm_process.wait_until(pred, self.p, timeout)

    def log(self):
        return self.err.text()


def run(d, sandbox):
    label = "sandbox" if sandbox else "no sandbox"
    kernel = tiny_guest.write_guest(d, "spin", tiny_guest.SPIN)
    wb = tiny_guest.write_disk(d, f"wb-{sandbox}.img")
    wt = tiny_guest.write_disk(d, f"wt-{sandbox}.img", 2 << 20)
    args = ["--kernel", kernel, "--disk", wb + ",cache=writeback",
            "--disk", wt + ",cache=writethrough,queues=2"]
    if not sandbox:
        args.append("--no-seccomp")
    vmm = Vmm(args)
    if not vmm.wait(lambda: "first KVM_RUN" in vmm.log()):
        report(f"{label}: guest started", False, vmm.log()[-1500:])
        vmm.p.kill()
        vmm.p.wait()
        return
    for n in (1, 2):
        vmm.p.send_signal(signal.SIGUSR1)
        # Disk 0 has one queue, disk 1 two: three ring lines per report.
        ok = vmm.wait(lambda: len(vmm.ring_lines()) >= 3 * n, 10)
        rings = [r.key for r in vmm.ring_lines()[3 * n - 3:3 * n]]
        ok = ok and rings == [(0, 0), (1, 0), (1, 1)]
        report(f"{label}: SIGUSR1 #{n} logs one ring line per queue, the I/O loop answering", ok,
               f"{rings}" if ok else f"{rings}; log tail: {vmm.log()[-800:]}")
        ok = vmm.wait(lambda: len(vmm.stats_lines()) >= 2 * n, 10)
        got = vmm.stats_lines()
        report(f"{label}: SIGUSR1 #{n} logs one stats line per disk", ok and len(got) == 2 * n,
               f"{len(got)} lines; log tail: {vmm.log()[-800:]}")
        if len(got) >= 2 * n:
            pair = got[2 * n - 2:2 * n]
            report(f"{label}: SIGUSR1 #{n}: disks 0 and 1, nothing at risk (the guest wrote nothing)",
                   [st.disk for st in pair] == [0, 1] and
                   all(st["at_risk_bytes"] == 0 and st["at_risk_requests"] == 0 for st in pair),
                   " | ".join(str(st) for st in pair))
    time.sleep(0.5)
    report(f"{label}: SIGUSR1 stops nothing", vmm.p.poll() is None, f"exit {vmm.p.returncode}")
    vmm.p.send_signal(signal.SIGTERM)
    try:
        code = vmm.p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        vmm.p.kill()
        code = vmm.p.wait()
    vmm.err.join(5)
    report(f"{label}: SIGTERM still stops it, exit 0", code == 0, f"exit {code}: {vmm.log()[-800:]}")
    final = vmm.stats_lines()[4:]
    report(f"{label}: exit stats lines carry the new fields", len(final) == 2,
           f"{len(final)} lines")
    if len(final) == 2:
        wbm = final[0]
        report(f"{label}: final flush counted with a latency on the writeback disk",
               wbm["flush_requests"] == 1 and wbm["fdatasyncs"] == 1 and
               wbm["flush_p50_us"] <= wbm["flush_p99_us"] <= wbm["flush_max_us"],
               str(wbm))


why = tiny_guest.kvm_usable()
if why:
    print(f"SKIP: needs KVM ({why})")
    sys.exit(77)
with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as d:
    run(d, sandbox=True)
    run(d, sandbox=False)
CHECKS.exit()
