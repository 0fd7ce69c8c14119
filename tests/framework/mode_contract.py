"""The host-side half of the cache-mode contract (docs/cache-modes.md), checked
on minivmm's per-disk exit line, for tests whose guest is a userspace program
(dd, fio) that does not report its exact flush count:

  writethrough, directsync: every write durable before completion (dsync), no
                            guest flush (one at shutdown is minivmm's own)
  writeback, none:          no dsync write, guest flushes arrive and reach fdatasync
  unsafe:                   no dsync write, flushes arrive, never fdatasync'd

check_stats holds the same rules exactly, against the guest agent's own
report of its writes and flushes (tests/e2e/cache_modes_e2e.py).
"""

from __future__ import annotations

from framework import agent_log
from framework import vmm_log
from framework.cache_modes import TRAITS, WRITE_BACK

TOGGLED = "writethrough"  # cache_modes_e2e: the disk whose write cache the guest switches on, then off again
# minivmm's own flush when the VM stops (VirtioBlk::quiesce) goes the way a
# guest flush goes, so the exit counters may hold one flush request (and, where
# flushes are honoured, one fdatasync) more than the guest sent.
SHUTDOWN_FLUSHES = 1


def check_mode_stats(mode, stat, min_writes, failures):
    """stat: (reads, writes, dsync_writes, flush_requests, fdatasyncs) from
    mode_stats. Appends what breaks the contract to failures."""
    reads, writes, dsync, flush_req, fdatasyncs = stat
    print(f"{mode:12} reads={reads} writes={writes} dsync_writes={dsync} "
          f"flush_requests={flush_req} fdatasyncs={fdatasyncs}")
    if writes < min_writes:
        failures.append(f"{mode}: device counted {writes} writes, the guest made at least {min_writes}")
    if mode in WRITE_BACK:
        if dsync != 0 or flush_req == 0:
            failures.append(f"{mode}: dsync_writes={dsync} flush_requests={flush_req}: want 0 and > 0")
        if mode == "unsafe" and fdatasyncs != 0:
            failures.append(f"unsafe: fdatasyncs={fdatasyncs}, want 0 (flushes are ignored)")
        if mode != "unsafe" and fdatasyncs < 1:
            failures.append(f"{mode}: fdatasyncs={fdatasyncs}: guest flushes must reach fdatasync")
    else:
        if dsync != writes:
            failures.append(f"{mode}: {dsync} of {writes} writes dsync, want all")
        if flush_req > 1:  # one flush at shutdown is minivmm's own
            failures.append(f"{mode}: {flush_req} flush requests on a write-through disk")


def mode_stats(log: str | bytes) -> dict[int, tuple[int, int, int, int, int]]:
    """Config disk index -> (reads, writes, durable_writes, flush_requests, fdatasyncs)
    from each disk's last `disk N stats:` line.

    durable_writes = dsync_writes + batched_durable_writes: the storage layer
    makes a write durable before it completes either with RWF_DSYNC or, for a
    batch, with one fdatasync after the writes (storage/disk.h DiskStats)."""
    return {i: (s["reads"], s["writes"], s["dsync_writes"] + s["batched_durable_writes"],
                s["flush_requests"], s["fdatasyncs"])
            for i, s in vmm_log.last_stats(log).items()}


class Checks:
    """Named checks; every one is evaluated and reported, failures make the exit code 1."""

    def __init__(self):
        self.failures: list[str] = []
        self.passed = 0

    def expect(self, ok: bool, name: str, detail: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failures.append(f"{name}: {detail}")
        return ok


def phase_counts(log: agent_log.AgentLog, disk: int, initial_cache: bool) -> dict[bool, dict[str, int]]:
    """Acks and flushes per write-cache state, walking the disk's console-ordered events."""
    counts = {True: {"acks": 0, "flushes": 0}, False: {"acks": 0, "flushes": 0}}
    state = initial_cache
    for kind, value in log.events.get(disk, []):
        if kind == "wce":
            state = bool(value)
        elif kind == "ack":
            counts[state]["acks"] += 1
        elif kind == "flushed":
            counts[state]["flushes"] += 1
    return counts


def flushes_match(device: int, guest: int) -> bool:
    return guest <= device <= guest + SHUTDOWN_FLUSHES


def check_stats(c: Checks, mode: str, stat: tuple[int, int, int, int, int],
                log: agent_log.AgentLog, disk: int, plan: dict) -> None:
    """The device's counters for one disk against what the guest did on it."""
    reads, writes, dsync, flush_req, fdatasyncs = stat
    acks = log.acks_of(disk)
    flushes = len(log.flushes_of(disk))
    c.expect(writes == len(acks), "stats", f"{mode}: device counted {writes} writes, guest acked {len(acks)}")
    c.expect(reads >= plan["writes"], "stats", f"{mode}: {reads} reads, guest read back {plan['writes']}")
    if mode in WRITE_BACK:
        c.expect(dsync == 0, "stats", f"{mode}: {dsync} dsync writes, expected 0 (write-back cache)")
        c.expect(flushes_match(flush_req, flushes) and flushes > 0, "stats",
                 f"{mode}: {flush_req} flush requests reached the device, guest completed {flushes}")
    if mode in WRITE_BACK and TRAITS[mode].flush_honoured:
        # Every flush follows a write, so each must cost one; more guest flushes than
        # SHUTDOWN_FLUSHES, or the shutdown flush alone could satisfy this.
        c.expect(fdatasyncs >= flushes > SHUTDOWN_FLUSHES, "stats",
                 f"{mode}: guest flushed {flushes} times but fdatasyncs={fdatasyncs}")
    if mode == "unsafe":
        c.expect(fdatasyncs == 0, "stats", f"unsafe: fdatasyncs={fdatasyncs}, expected 0 (flushes ignored)")
    if mode == "directsync":
        c.expect(dsync == writes, "stats", f"directsync: {dsync} of {writes} writes dsync, expected all")
        c.expect(flushes_match(flush_req, 0), "stats",
                 f"directsync: {flush_req} flush requests, expected none from the guest (no write cache)")
    if mode == TOGGLED:
        per_state = phase_counts(log, disk, log.disks[disk].write_cache)
        off, on = per_state[False], per_state[True]
        c.expect(off["acks"] > 0 and on["acks"] > 0 and on["flushes"] > SHUTDOWN_FLUSHES, "stats",
                 f"{mode}: plan did not cover both cache states: {per_state}")
        c.expect(dsync == off["acks"], "stats",
                 f"{mode}: {dsync} dsync writes, expected {off['acks']} (acked while the cache was off)")
        c.expect(writes - dsync == on["acks"], "stats",
                 f"{mode}: {writes - dsync} non-dsync writes, expected {on['acks']} (while WCE=1)")
        c.expect(flushes_match(flush_req, on["flushes"]), "stats",
                 f"{mode}: {flush_req} flush requests, expected {on['flushes']} (those issued while WCE=1)")
        c.expect(fdatasyncs >= on["flushes"] > 0, "stats",
                 f"{mode}: fdatasyncs={fdatasyncs} although the guest flushed {on['flushes']} times with WCE=1")
