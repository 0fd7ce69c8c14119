#!/usr/bin/env python3
"""Power-loss checker for minivmm write logs (storage/write_log_format.h).

Rebuilds the image states a power cut could leave at every point of a logged
run and checks the disk's cache-mode promise (docs: cache-modes.md, "What
survives what") against what the guest was told.

What counts as durable (the host-level records are the only evidence):
  * a write issued with RWF_DSYNC is durable once its completion is logged;
  * any write or fallocate is durable once a logged fdatasync that was issued
    AFTER the write's completion has completed successfully (a failed
    fdatasync is no barrier; one issued while the write was in flight might
    not cover it);
  * O_DIRECT alone is NOT durable (QEMU's model: cache=none still needs a
    flush for the device's volatile cache). --direct-is-durable changes that
    for O_DIRECT images (a model where the disk has no volatile cache).
Everything else may be lost at a power cut, each write independently and, for
torn writes, sector by sector (512 B).

What is promised (per guest write or write-zeroes that completed with status 0):
  * guest write cache off when submitted (writethrough, directsync, or a guest
    that switched WCE off): from the moment the guest is told it completed;
  * write cache on (writeback, none): from the completion of the first
    successful guest flush submitted after the write completed;
  * unsafe: nothing. The checker reports what the writeback reading would
    have lost instead, and never fails.
Discards promise no content (virtio: data after discard is unspecified).

How states are checked: the durable set only grows along the log, so for each
cut point the "worst case" state (base image + only the durable operations,
each sector holding the newest durable one by issue order) is built
incrementally. A promised write passes at a cut when every one of its sectors
holds its data, or the data of a guest request that was not ordered before it
(submitted before its completion, or after it) and could therefore legitimately
have replaced it, or lies under such a discard. Any other subset of lost
non-durable writes can only put such allowed data on top, so checking the
worst case covers every state. Each promised write is checked when it becomes
promised and again whenever a durable operation changes one of its sectors.

--image-after IMAGE also checks the process-kill promise (every mode): every
write the guest saw complete is in IMAGE, and every sector that differs from
the base holds data some guest request wrote.

usage: PYTHONPATH=tests python3 -m framework.powerloss_check LOG BASE_IMAGE [--image-after IMAGE] [--json]
exit: 0 promise kept, 1 violations, 2 unreadable input.
"""
import argparse
import bisect
import json
import struct
import sys

from framework.cache_modes import MODES

HEADER = struct.Struct("<8sIIQIIII")
RECORD = struct.Struct("<IIQQQq")
MAGIC = b"MVMWLOG1"
SECTOR = 512

HOST_WRITE_ISSUED, HOST_WRITE_DONE = 1, 2
HOST_FLUSH_ISSUED, HOST_FLUSH_DONE = 3, 4
HOST_FALLOC_ISSUED, HOST_FALLOC_DONE = 5, 6
GUEST_SUBMIT, GUEST_COMPLETE, GUEST_FLUSH_COMPLETE, SET_WRITE_CACHE = 16, 17, 18, 19
TYPE_NAMES = {1: "host-write-issued", 2: "host-write-done", 3: "host-flush-issued",
              4: "host-flush-done", 5: "host-fallocate-issued", 6: "host-fallocate-done",
              16: "guest-submit", 17: "guest-complete", 18: "guest-flush-complete",
              19: "set-write-cache"}
G_WRITE, G_FLUSH, G_DISCARD, G_ZEROES = 1, 2, 3, 4
GUEST_OP_NAMES = {1: "write", 2: "flush", 3: "discard", 4: "write-zeroes"}
FLAG_DSYNC, FLAG_HAS_DATA = 1, 2
FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 0x02, 0x10


class LogError(Exception):
    pass


class Event:
    __slots__ = ("index", "type", "flags", "id", "offset", "length", "value", "data")

    def describe(self):
        name = TYPE_NAMES.get(self.type, f"type-{self.type}")
        if self.type == GUEST_SUBMIT:
            return (f"#{self.index} {name} {GUEST_OP_NAMES.get(self.value, '?')} "
                    f"guest-req {self.id} [{self.offset}, +{self.length})")
        if self.type in (HOST_WRITE_ISSUED, HOST_FALLOC_ISSUED):
            dsync = " dsync" if self.flags & FLAG_DSYNC else ""
            return f"#{self.index} {name} tag {self.id} [{self.offset}, +{self.length}){dsync}"
        return f"#{self.index} {name} id {self.id} value {self.value}"


def read_log(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < HEADER.size:
        raise LogError(f"{path}: shorter than the header")
    magic, version, block, size, mode, wce, direct, plen = HEADER.unpack_from(blob)
    if magic != MAGIC or version != 1:
        raise LogError(f"{path}: not a version-1 minivmm write log")
    if mode >= len(MODES):
        raise LogError(f"{path}: unknown cache mode {mode}")
    header = {"block_size": block, "image_size": size, "mode": MODES[mode],
              "write_cache": bool(wce), "direct": bool(direct),
              "image_path": blob[HEADER.size:HEADER.size + plen].decode(errors="replace")}
    pos = HEADER.size + plen
    events, truncated = [], False
    while pos < len(blob):
        if pos + RECORD.size > len(blob):
            truncated = True  # a kill mid-record cuts only the tail
            break
        e = Event()
        e.type, e.flags, e.id, e.offset, e.length, e.value = RECORD.unpack_from(blob, pos)
        pos += RECORD.size
        e.data = None
        if e.flags & FLAG_HAS_DATA:
            if pos + e.length > len(blob):
                truncated = True
                break
            e.data = blob[pos:pos + e.length]
            pos += e.length
        e.index = len(events)
        events.append(e)
    return header, events, truncated


class HostOp:
    __slots__ = ("issue", "tag", "offset", "length", "data", "dsync", "zero", "done", "result")


class HostFlush:
    __slots__ = ("issue", "done", "result")


class GuestOp:
    __slots__ = ("gid", "op", "submit", "offset", "length", "data", "wce", "complete", "status")


class Run:
    """The log digested: host operations, host flushes and guest requests."""

    def __init__(self, header, events):
        self.header, self.events = header, events
        self.host_ops, self.host_flushes, self.guest_ops, self.guest_flushes = [], [], [], []
        in_flight, guests = {}, {}
        wce = header["write_cache"]
        for e in events:
            t = e.type
            if t in (HOST_WRITE_ISSUED, HOST_FALLOC_ISSUED):
                op = HostOp()
                op.issue, op.tag, op.offset, op.length = e.index, e.id, e.offset, e.length
                op.dsync = t == HOST_WRITE_ISSUED and bool(e.flags & FLAG_DSYNC)
                if t == HOST_WRITE_ISSUED:
                    if e.data is None or len(e.data) != e.length:
                        raise LogError(f"event {e.index}: host write without its data")
                    op.data, op.zero = e.data, False
                else:
                    op.data = None
                    op.zero = bool(e.value & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
                op.done = op.result = None
                self._start(in_flight, e, op)
                self.host_ops.append(op)
            elif t == HOST_FLUSH_ISSUED:
                fl = HostFlush()
                fl.issue, fl.done, fl.result = e.index, None, None
                self._start(in_flight, e, fl)
                self.host_flushes.append(fl)
            elif t in (HOST_WRITE_DONE, HOST_FLUSH_DONE, HOST_FALLOC_DONE):
                op = in_flight.pop(e.id, None)
                if op is None:
                    raise LogError(f"event {e.index}: completion of tag {e.id}, never issued")
                op.done, op.result = e.index, e.value
            elif t == GUEST_SUBMIT:
                g = GuestOp()
                g.gid, g.op, g.submit, g.offset, g.length = e.id, e.value, e.index, e.offset, e.length
                g.wce, g.complete, g.status = wce, None, None
                if g.op == G_WRITE:
                    g.data = e.data if e.data is not None else b""
                elif g.op == G_ZEROES:
                    g.data = bytes(g.length)
                else:
                    g.data = None
                guests[g.gid] = g
                (self.guest_flushes if g.op == G_FLUSH else self.guest_ops).append(g)
            elif t in (GUEST_COMPLETE, GUEST_FLUSH_COMPLETE):
                g = guests.get(e.id)
                if g is None or g.complete is not None:
                    raise LogError(f"event {e.index}: completion of guest request {e.id} "
                                   "that is unknown or already complete")
                g.complete, g.status = e.index, e.value
            elif t == SET_WRITE_CACHE:
                wce = bool(e.value)
            else:
                raise LogError(f"event {e.index}: unknown record type {t}")

    @staticmethod
    def _start(in_flight, e, op):
        if e.id in in_flight:
            raise LogError(f"event {e.index}: tag {e.id} issued while still in flight")
        in_flight[e.id] = op


class Barriers:
    """Completed barriers as (issued, effective-from cut); answers "the
    earliest cut from which a barrier issued after event X has taken effect"."""

    def __init__(self, barriers):
        barriers = sorted(barriers)
        self.starts = [b[0] for b in barriers]
        self.suffix_min = [None] * (len(barriers) + 1)
        for i in range(len(barriers) - 1, -1, -1):
            nxt = self.suffix_min[i + 1]
            self.suffix_min[i] = barriers[i][1] if nxt is None else min(barriers[i][1], nxt)

    def earliest_after(self, event):
        return self.suffix_min[bisect.bisect_right(self.starts, event)]


def durable_at(run, direct_is_durable):
    """Cut (number of events that happened) from which each host op is durable."""
    fdatasyncs = Barriers((f.issue, f.done + 1) for f in run.host_flushes
                          if f.done is not None and f.result == 0)
    out = {}
    for op in run.host_ops:
        ok = op.done is not None and (op.result == 0 if op.data is None else op.result == op.length)
        if not ok:
            continue  # failed or never finished: may be lost (or torn)
        cands = []
        if op.dsync or (direct_is_durable and run.header["direct"] and op.data is not None):
            cands.append(op.done + 1)
        f = fdatasyncs.earliest_after(op.done)
        if f is not None:
            cands.append(f)
        if cands:
            out[id(op)] = min(cands)
    return out


def promised_at(run, writeback_reading):
    """Cut from which each guest write/zeroes is promised durable."""
    flushes = Barriers((g.submit, g.complete + 1) for g in run.guest_flushes
                       if g.complete is not None and g.status == 0)
    out = {}
    for g in run.guest_ops:
        if g.op == G_DISCARD or g.complete is None or g.status != 0:
            continue
        if not g.wce and not writeback_reading:
            out[g.gid] = g.complete + 1
            continue
        f = flushes.earliest_after(g.complete)
        if f is not None:
            out[g.gid] = f
    return out


class WorstCase:
    """Base image plus the durable host operations only."""

    def __init__(self, base):
        self.img = bytearray(base)
        self.owner = [-1] * (len(base) // SECTOR)  # issue index of the op whose data is there

    def apply(self, op):
        first, count = op.offset // SECTOR, op.length // SECTOR
        if op.data is None and not op.zero:
            return None  # plain allocation: content unchanged
        changed = False
        for i in range(count):
            s = first + i
            if self.owner[s] > op.issue:
                continue  # a later-issued durable op already wrote this sector
            a = s * SECTOR
            if op.data is None:
                self.img[a:a + SECTOR] = bytes(SECTOR)
            else:
                self.img[a:a + SECTOR] = op.data[i * SECTOR:(i + 1) * SECTOR]
            self.owner[s] = op.issue
            changed = True
        return (op.offset, op.offset + op.length) if changed else None


def overlaps(a0, a1, b0, b1):
    return a0 < b1 and b0 < a1


class Checker:
    def __init__(self, run, base):
        self.run = run
        self.base = base
        # Guest requests by sector-aligned start, for finding alternatives.
        self.by_start = sorted(run.guest_ops, key=lambda g: g.offset)
        self.starts = [g.offset for g in self.by_start]
        self.max_len = max((g.length if g.data is None else len(g.data) for g in run.guest_ops),
                           default=0)

    def glen(self, g):
        return len(g.data) if g.data is not None else g.length

    def alternatives(self, p, sector_off, cut):
        """Guest requests that may legitimately hold the sector instead of p."""
        lo = bisect.bisect_left(self.starts, sector_off - self.max_len + 1)
        hi = bisect.bisect_right(self.starts, sector_off)
        for q in self.by_start[lo:hi]:
            if q is p or q.submit >= cut:
                continue
            if not overlaps(q.offset, q.offset + self.glen(q), sector_off, sector_off + SECTOR):
                continue
            if q.complete is not None and q.complete < p.submit:
                continue  # ordered before p: p's data replaced it
            yield q

    def bad_sectors(self, p, img, cut):
        """Sectors of p whose content no allowed request explains."""
        n = len(p.data)
        if img[p.offset:p.offset + n] == p.data:
            return []
        bad = []
        for i in range(0, n, SECTOR):
            s = p.offset + i
            have = img[s:s + SECTOR]
            if have == p.data[i:i + SECTOR]:
                continue
            ok = False
            for q in self.alternatives(p, s, cut):
                if q.op == G_DISCARD:
                    ok = True
                elif q.data[s - q.offset:s - q.offset + SECTOR] == have:
                    ok = True
                if ok:
                    break
            if not ok:
                bad.append(s)
        return bad

    def powerloss(self, promises, durable):
        """Walks every cut point; returns ({gid: first violation}, cuts_with_loss)."""
        events = self.run.events
        by_cut_durable, by_cut_promised = {}, {}
        for op in self.run.host_ops:
            c = durable.get(id(op))
            if c is not None:
                by_cut_durable.setdefault(c, []).append(op)
        guests = {g.gid: g for g in self.run.guest_ops}
        for gid, c in promises.items():
            by_cut_promised.setdefault(c, []).append(guests[gid])
        state = WorstCase(self.base)
        active, violations, cuts_with_loss = [], {}, 0
        lost_now, previous = set(), 0
        for cut in sorted(set(by_cut_durable) | set(by_cut_promised)):
            if lost_now:
                cuts_with_loss += cut - previous  # the state did not change in between
            previous = cut
            changed = []
            for op in sorted(by_cut_durable.get(cut, []), key=lambda o: o.issue):
                r = state.apply(op)
                if r:
                    changed.append(r)
            new = by_cut_promised.get(cut, [])
            active.extend(new)
            check = list(new)
            if changed:
                check += [p for p in active if p not in new and any(
                    overlaps(p.offset, p.offset + len(p.data), a, b) for a, b in changed)]
            for p in check:
                bad = self.bad_sectors(p, state.img, cut)
                if bad:
                    lost_now.add(p.gid)
                    if p.gid not in violations:
                        s = bad[0]
                        owner = state.owner[s // SECTOR]
                        held = "the base image" if owner < 0 else \
                            f"host op issued at event #{owner}"
                        violations[p.gid] = {
                            "guest_request": p.gid,
                            "op": GUEST_OP_NAMES[p.op],
                            "offset": p.offset,
                            "length": len(p.data),
                            "submitted_event": p.submit,
                            "completed_event": p.complete,
                            "promised_from_cut": promises[p.gid],
                            "cut": cut,
                            "after_event": events[cut - 1].describe() if cut > 0 else "start",
                            "bad_sectors": len(bad),
                            "first_bad_sector_offset": s,
                            "sector_holds": held,
                        }
                else:
                    lost_now.discard(p.gid)
        if lost_now:
            cuts_with_loss += len(events) + 1 - previous
        return violations, cuts_with_loss

    def process_kill(self, after):
        """The SIGKILL promise, checked against the image left behind."""
        problems = []
        end = len(self.run.events)
        if len(after) != len(self.base):
            return [f"image size {len(after)} differs from the base's {len(self.base)}"]
        for p in self.run.guest_ops:
            if p.op == G_DISCARD or p.complete is None or p.status != 0:
                continue
            bad = self.bad_sectors(p, after, end + 1)
            if bad:
                problems.append(f"guest {GUEST_OP_NAMES[p.op]} {p.gid} at {p.offset} completed "
                                f"(event #{p.complete}) but {len(bad)} sector(s) are not in the "
                                f"image, first at {bad[0]}")
        for s in range(0, len(after), SECTOR):
            have = after[s:s + SECTOR]
            if have == self.base[s:s + SECTOR]:
                continue
            explained = False
            for q in self.run.guest_ops:
                if not overlaps(q.offset, q.offset + self.glen(q), s, s + SECTOR):
                    continue
                if q.op == G_DISCARD or q.data[s - q.offset:s - q.offset + SECTOR] == have:
                    explained = True
                    break
            if not explained:
                problems.append(f"sector at {s} holds data no guest request wrote")
        return problems


def check(log_path, base_path, image_after=None, direct_is_durable=False):
    header, events, truncated = read_log(log_path)
    with open(base_path, "rb") as f:
        base = f.read()
    if len(base) != header["image_size"]:
        raise LogError(f"base image is {len(base)} bytes, the log's image {header['image_size']}")
    run = Run(header, events)
    checker = Checker(run, base)
    unsafe = header["mode"] == "unsafe"
    durable = durable_at(run, direct_is_durable)
    promises = promised_at(run, writeback_reading=unsafe)
    violations, cuts_with_loss = checker.powerloss(promises, durable)
    report = {
        "mode": header["mode"],
        "image": header["image_path"],
        "events": len(events),
        "log_truncated": truncated,
        "cut_points": len(events) + 1,
        "worst_case_states": len(set(durable.values())) + 1,
        "host_writes": sum(1 for o in run.host_ops if o.data is not None),
        "host_dsync_writes": sum(1 for o in run.host_ops if o.dsync),
        "host_fdatasyncs": sum(1 for f in run.host_flushes if f.done is not None and f.result == 0),
        "guest_writes": sum(1 for g in run.guest_ops if g.op == G_WRITE),
        "guest_flushes": len(run.guest_flushes),
        "guest_write_cache_switches": sum(1 for e in events if e.type == SET_WRITE_CACHE),
        "promised": 0 if unsafe else len(promises),
        "violations": [] if unsafe else sorted(violations.values(), key=lambda v: v["cut"]),
    }
    if unsafe:
        # Nothing is promised; say what the writeback reading would have lost.
        report["would_be_promised"] = len(promises)
        report["would_be_lost"] = len(violations)
        report["cut_points_with_loss"] = cuts_with_loss
        report["would_be_lost_examples"] = sorted(violations.values(), key=lambda v: v["cut"])[:5]
    if image_after is not None:
        with open(image_after, "rb") as f:
            report["process_kill_problems"] = checker.process_kill(f.read())
    return report


def compare_after_cut(log_path, image):
    """A real power cut's outcome against this checker's model (the power-cut
    campaign's cross-check): at the end of the log, which sectors' newest
    host write the model calls durable and which at risk, and which of them
    the image after the cut really lost. Agreement means every lost sector
    was at risk; sectors at risk that survived only show the model is an
    upper bound (page cache written back in time, O_DIRECT already on disk)."""
    header, events, _ = read_log(log_path)
    if len(image) != header["image_size"]:
        raise LogError(f"image is {len(image)} bytes, the log's image {header['image_size']}")
    run = Run(header, events)
    durable = durable_at(run, direct_is_durable=False)
    end = len(events)
    newest = {}  # sector -> (host write, sector within it), the last issued wins
    for op in run.host_ops:
        if op.data is None or op.offset % SECTOR or op.length % SECTOR:
            continue  # fallocate, or not whole sectors (the agent writes neither)
        for k in range(op.length // SECTOR):
            newest[op.offset // SECTOR + k] = (op, k)
    out = {"sectors": len(newest), "at_risk": 0, "lost": 0, "lost_at_risk": 0, "lost_durable": 0,
           "survived_at_risk": 0, "disagreements": []}
    for sector, (op, k) in sorted(newest.items()):
        at_risk = durable.get(id(op), end + 1) > end
        lost = image[sector * SECTOR:(sector + 1) * SECTOR] != op.data[k * SECTOR:(k + 1) * SECTOR]
        out["at_risk"] += at_risk
        out["lost"] += lost
        out["lost_at_risk"] += lost and at_risk
        out["survived_at_risk"] += at_risk and not lost
        if lost and not at_risk:
            out["lost_durable"] += 1
            if len(out["disagreements"]) < 5:
                out["disagreements"].append(f"sector {sector}: host write (event {op.issue}) durable "
                                            f"in the model, lost in the cut")
    return out


def print_human(r):
    print(f"mode={r['mode']} events={r['events']} cut_points={r['cut_points']} "
          f"worst_case_states={r['worst_case_states']} guest_writes={r['guest_writes']} "
          f"guest_flushes={r['guest_flushes']} host_writes={r['host_writes']} "
          f"(dsync {r['host_dsync_writes']}) host_fdatasyncs={r['host_fdatasyncs']} "
          f"wce_switches={r['guest_write_cache_switches']}"
          + (" LOG TRUNCATED" if r["log_truncated"] else ""))
    if r["mode"] == "unsafe":
        print(f"unsafe promises nothing; the writeback reading would promise "
              f"{r['would_be_promised']} writes, of which {r['would_be_lost']} could be lost "
              f"(loss possible at {r['cut_points_with_loss']} cut points)")
        for v in r["would_be_lost_examples"]:
            print(f"  would lose guest {v['op']} {v['guest_request']} at {v['offset']} "
                  f"(+{v['length']}), cut after {v['after_event']}")
    else:
        print(f"promised={r['promised']} violations={len(r['violations'])}")
        for v in r["violations"][:20]:
            print(f"  VIOLATION guest {v['op']} {v['guest_request']} [{v['offset']}, "
                  f"+{v['length']}) completed at event #{v['completed_event']}, promised from "
                  f"cut {v['promised_from_cut']}; lost at the cut after {v['after_event']}: "
                  f"{v['bad_sectors']} sector(s), first at {v['first_bad_sector_offset']} "
                  f"holds {v['sector_holds']}")
    for p in r.get("process_kill_problems", [])[:20]:
        print(f"  PROCESS-KILL VIOLATION {p}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("log")
    ap.add_argument("base_image")
    ap.add_argument("--image-after", help="image after the run: also check the process-kill promise")
    ap.add_argument("--direct-is-durable", action="store_true",
                    help="treat O_DIRECT write completion as durable (ignores device caches)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)
    try:
        r = check(args.log, args.base_image, args.image_after, args.direct_is_durable)
    except (LogError, OSError) as e:
        print(f"powerloss_check: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r, indent=1))
    else:
        print_human(r)
    failed = bool(r["violations"]) or bool(r.get("process_kill_problems"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
