"""The host-side half of the cache-mode contract (docs/cache-modes.md), checked
on minivmm's per-disk exit line, for tests whose guest is a userspace program
(dd, fio) that does not report its exact flush count:

  writethrough, directsync: every write durable before completion (dsync), no
                            guest flush (one at shutdown is minivmm's own)
  writeback, none:          no dsync write, guest flushes arrive and reach fdatasync
  unsafe:                   no dsync write, flushes arrive, never fdatasync'd
"""

WRITE_BACK = {"writeback", "none", "unsafe"}


def check_mode_stats(mode, stat, min_writes, failures):
    """stat: (reads, writes, dsync_writes, flush_requests, fdatasyncs) from
    cache_modes_e2e.parse_stats. Appends what breaks the contract to failures."""
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
