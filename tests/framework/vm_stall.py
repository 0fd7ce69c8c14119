"""Why a VM test's wait timed out while minivmm was still running.

Two causes look the same from outside (no progress, minivmm alive) and need
opposite answers:
- a sandbox stall: in the nested-KVM sandbox a vCPU sometimes stays in guest
  mode and never exits (docs/nested-kvm.md, "Guests hang or triple-fault");
  its thread's guest_time in /proc rises one-for-one with its CPU time while
  nothing waits on a disk. Not minivmm's fault: the test is retried once on
  a fresh sandbox boot, as the runner retries its other infrastructure
  failures (exit 125);
- a minivmm hang: a request the guest published that the device never took,
  requests that never complete, a queue that needs a reset, or an I/O loop
  that does not answer. A test failure, reported with the evidence.

The evidence: each vCPU thread's guest time (/proc/PID/task/TID/stat field
43, threads named minivmm-vcpuN) sampled twice, a few seconds apart, and
minivmm's ring lines (SIGUSR1, devices/virtio_blk/ring_report.h) at each
sample. classify() is a pure function of that evidence; diagnose() gathers
it from a live process (it runs where minivmm runs: inside the sandbox when
the test is nested, so /proc is local).

VM tests import this module as `framework.vm_stall` (add_vm_test puts tests/
on PYTHONPATH; by hand: PYTHONPATH=tests python3 tests/...).
"""
from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from typing import Callable, Optional

from framework.vmm_log import Ring, parse_rings

SANDBOX_STALL = "sandbox-stall"
MINIVMM_HANG = "minivmm-hang"
UNKNOWN = "unknown"

# The runner's infrastructure-failure status (tools/nested_kvm.py).
EXIT_INFRA = 125

# A vCPU stuck in guest mode: at least this share of its CPU time was guest
# time (docs/nested-kvm.md: guest_time rising one-for-one with CPU time)...
STUCK_GUEST_SHARE = 0.9
# ...and it was on a CPU for at least this share of the interval, so it was
# running, not halted (vCPUs stuck together share the sandbox's one CPU).
STUCK_ON_CPU_SHARE = 0.25

@dataclasses.dataclass(frozen=True)
class VcpuTime:
    """One vCPU thread's CPU time over the interval, in clock ticks."""
    name: str
    guest_ticks: int
    cpu_ticks: int  # user + system (guest time is counted in user time)


@dataclasses.dataclass
class Evidence:
    interval_ticks: int  # wall-clock length of the interval, in clock ticks
    vcpus: list[VcpuTime]
    rings_before: Optional[list[Ring]]  # None: minivmm logged no ring report
    rings_after: Optional[list[Ring]]


@dataclasses.dataclass
class Verdict:
    kind: str  # SANDBOX_STALL, MINIVMM_HANG or UNKNOWN
    reasons: list[str]

    def __str__(self):
        return f"{self.kind}: " + "; ".join(self.reasons)


def _hang_reasons(before: list[Ring], after: list[Ring], seconds: float) -> list[str]:
    reasons = []
    earlier = {r.key: r for r in before}
    for r in after:
        if not r.loop_answered:
            reasons.append(f"{r}: the I/O loop did not answer the ring report")
            continue
        if r.needs_reset:
            reasons.append(f"{r}: the device stopped the queue (DEVICE_NEEDS_RESET)")
            continue
        e = earlier.get(r.key)
        if not r.ready or e is None:
            continue
        if r.untaken and e.untaken and r.last_avail == e.last_avail:
            reasons.append(f"{r}: {r.untaken} chain(s) published by the guest, not taken by the "
                           f"device in {seconds:.1f} s")
        elif r.in_flight and e.in_flight and r.used_idx == e.used_idx:
            reasons.append(f"{r}: {r.in_flight} request(s) in flight, none completed in "
                           f"{seconds:.1f} s")
    for r in before:  # a loop that did not answer the first report but did the second
        if not r.loop_answered and all(a.key != r.key or a.loop_answered for a in after):
            reasons.append(f"{r}: the I/O loop did not answer the first ring report")
    return reasons


def classify(e: Evidence, clock_ticks_per_s: int = 100) -> Verdict:
    """What the evidence says: a minivmm hang wins over a stuck vCPU (a vCPU
    spinning while the device sits on its request is the device's fault)."""
    seconds = e.interval_ticks / clock_ticks_per_s
    if e.rings_before is not None and e.rings_after is not None:
        hang = _hang_reasons(e.rings_before, e.rings_after, seconds)
        if hang:
            return Verdict(MINIVMM_HANG, hang)
    interval = max(e.interval_ticks, 1)
    described = [f"{v.name} {v.guest_ticks / interval:.0%} of {seconds:.1f} s in guest mode "
                 f"({v.cpu_ticks / interval:.0%} on a CPU)" for v in e.vcpus]
    if e.rings_before is None or e.rings_after is None:
        return Verdict(UNKNOWN, ["minivmm logged no ring report after SIGUSR1"] + described)
    stuck = [d for v, d in zip(e.vcpus, described)
             if v.cpu_ticks >= STUCK_ON_CPU_SHARE * interval
             and v.guest_ticks >= STUCK_GUEST_SHARE * v.cpu_ticks]
    if stuck:
        idle = "no disk request pending" if e.rings_after else "no disks"
        return Verdict(SANDBOX_STALL, stuck + [idle])
    rings = [str(r) for r in e.rings_after] or ["no disks"]
    return Verdict(UNKNOWN, described + rings + ["no vCPU stuck in guest mode, no disk request pending"])


# --- gathering the evidence from a live minivmm --------------------------------


def parse_stat_times(stat: str) -> tuple[int, int, int]:
    """(utime, stime, guest_time) from a /proc/.../stat line (proc(5): fields
    14, 15 and 43; the command name in field 2 may hold spaces and parens)."""
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is field 3 (state)
    return int(fields[11]), int(fields[12]), int(fields[40])


def vcpu_times(pid: int) -> dict[str, tuple[int, int]]:
    """{thread name: (guest ticks, user+system ticks)} for minivmm-vcpuN threads."""
    out = {}
    task = f"/proc/{pid}/task"
    for tid in os.listdir(task):
        try:
            with open(f"{task}/{tid}/comm") as f:
                name = f.read().strip()
            if not name.startswith("minivmm-vcpu"):
                continue
            with open(f"{task}/{tid}/stat") as f:
                utime, stime, guest = parse_stat_times(f.read())
        except (OSError, ValueError, IndexError):
            continue  # the thread ended in between
        out[name] = (guest, utime + stime)
    return out


def ring_report(pid: int, read_log: Callable[[], str], timeout: float = 10.0) -> Optional[list[Ring]]:
    """Sends SIGUSR1 and returns the ring lines it logged (None when none came).
    minivmm logs the disk stats lines, then one ring line per queue after at
    most 2 s (ring_report.h); a minivmm without disks logs "SIGUSR1: no disks"."""
    start = len(read_log())
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        new = read_log()[start:]
        if "SIGUSR1: no disks" in new:
            return []
        rings = parse_rings(new)
        if rings and len(rings) == seen:
            return rings  # no more lines since the last look: the report is complete
        seen = len(rings)
        time.sleep(0.5)
    rings = parse_rings(read_log()[start:])
    return rings or None


def diagnose(pid: int, read_log: Callable[[], str], interval: float = 3.0) -> Verdict:
    ticks = os.sysconf("SC_CLK_TCK")
    t0, first = time.monotonic(), vcpu_times(pid)
    rings_before = ring_report(pid, read_log)
    time.sleep(max(0.0, interval - (time.monotonic() - t0)))
    t1, second = time.monotonic(), vcpu_times(pid)
    rings_after = ring_report(pid, read_log)
    vcpus = [VcpuTime(name, second[name][0] - first[name][0], second[name][1] - first[name][1])
             for name in sorted(second) if name in first]
    return classify(Evidence(round((t1 - t0) * ticks), vcpus, rings_before, rings_after), ticks)


def in_nested_sandbox() -> bool:
    return os.environ.get("MINIVMM_IN_NESTED_SANDBOX") == "1"


def report_infrastructure_failure(why: str) -> None:
    """Tells the nested-KVM runner the sandbox failed, not the command: the
    run directory is shared with the host at once (tools/nested_kvm.py)."""
    run_dir = os.environ.get("MINIVMM_NESTED_RUN_DIR")
    if run_dir:
        try:
            with open(os.path.join(run_dir, "infra_error"), "w") as f:
                f.write(why + "\n")
        except OSError:
            pass


def after_timeout(proc, read_log: Callable[[], str], label: str) -> Optional[Verdict]:
    """Call when a wait for `proc` (a running minivmm's Popen) timed out,
    before stopping it. Returns None when minivmm has already exited, else the
    verdict, printed with its evidence. A sandbox stall inside the nested
    sandbox does not return: minivmm is killed and SystemExit(125) is raised
    (call from the main thread), so the runner retries the test on a fresh
    sandbox boot; anywhere else a stuck vCPU is reported like any other
    verdict (a test failure)."""
    if proc.poll() is not None:
        return None
    verdict = diagnose(proc.pid, read_log)
    print(f"vm-stall: {label}: minivmm still running after the wait timed out: {verdict}",
          file=sys.stderr, flush=True)
    if verdict.kind == SANDBOX_STALL and in_nested_sandbox():
        why = f"{label}: the sandbox stalled a vCPU in guest mode ({verdict})"
        print(f"vm-stall: INFRASTRUCTURE FAILURE (not a test failure): {why}; exit {EXIT_INFRA}",
              file=sys.stderr, flush=True)
        report_infrastructure_failure(why)
        proc.kill()
        proc.wait()
        sys.exit(EXIT_INFRA)
    return verdict
