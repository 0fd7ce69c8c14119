"""The power-loss promise, checked on one disk image after a real power cut.

cache-modes.md "What survives what", host crash or power loss: only what
reached stable storage is kept.

  writethrough, directsync   every write the guest saw complete (`agent ack`)
  writeback, none            every write completed before a flush that
                             completed (`agent flushed <d> <seq>` covers the
                             disk's acks up to <seq>)
  unsafe                     nothing

Against the image's content before the boot (the snapshot), block by block
(a record is one 512-byte logical block, so this is record granularity):

  promised  each sector's newest promised record is there byte-exact, or a
            later record the agent issued for that sector (acked or not:
            whatever reached the disk after it may have survived too)
  allowed   a sector whose newest ack is not promised may hold that record,
            any record the agent issued there in this boot, or its snapshot
            content: the last two count as "lost" (an acknowledged record
            the cut took away, which the mode allows)
  others    every other block that differs from the snapshot holds a
            complete, valid record of this disk, generation and seed,
            written for this very sector (no torn, stale or foreign data)
  size      the image kept its size

Unlike the process-kill check (kill_check.py), there is no upper bound on
the seq of a record that landed: the host sees the agent's lines through a
chain of buffers (minivmm's console pipe, the sandbox's serial line, QEMU,
the runner) that the cut truncates, so the guest may have got well past the
last line the host saw. The sector mapping, the CRC, the payload and the
disk/generation/seed identity still pin every record down.

Standard library only; `check_image` is what the sandbox side runs,
`powercut_check_test.py` tests it on synthetic images.
"""
from __future__ import annotations

import dataclasses

from framework import kill_check
from framework import records

# What each mode promises across a power cut.
PROMISE = {"writeback": "flushed", "none": "flushed", "writethrough": "acked",
           "directsync": "acked", "unsafe": "nothing"}
NO_BOUND = 1 << 62  # see the module docstring: no upper bound on a landed seq


@dataclasses.dataclass
class Result:
    acked: int = 0            # ack lines seen by the host
    flushed: int = 0          # of those, covered by a completed flush
    promised: int = 0         # sectors whose newest promised record must survive
    verified: int = 0         # of those, found intact (or a later issued record there)
    lost: int = 0             # sectors whose newest acked record is gone (mode allows it)
    lost_flushed: int = 0     # of those, the lost record was covered by a completed flush
    landed_unacked: int = 0   # valid records with no ack line seen (cut off, or in flight)
    violations: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["violation_count"] = len(self.violations)
        d["violations"] = self.violations[:10]
        return d


def promised_acks(promise: str, acks: list[records.Ack], flushed_upto: int) -> list[records.Ack]:
    """The acks a cut must not lose: all, those covered by a flush (seq <= flushed_upto), or none."""
    if promise == "acked":
        return list(acks)
    if promise == "flushed":
        return [a for a in acks if a.seq <= flushed_upto]
    if promise == "nothing":
        return []
    raise ValueError(f"unknown promise {promise!r}")


def _differing_blocks(snapshot: bytes, image: bytes, lbs: int, chunk: int = 1 << 16):
    """Offsets of the blocks that differ; whole chunks compared first (the sandbox is slow)."""
    for base in range(0, len(image), chunk):
        if image[base:base + chunk] == snapshot[base:base + chunk]:
            continue
        for off in range(base, min(base + chunk, len(image)), lbs):
            if image[off:off + lbs] != snapshot[off:off + lbs]:
                yield off


def check_image(snapshot: bytes, image: bytes, acks: list[records.Ack], flushed_upto: int,
                disk: int, generation: int, layout: kill_check.Layout, promise: str) -> Result:
    """Checks one image after a power cut; see the module docstring for the rules.

    flushed_upto: the highest seq of a completed flush line of this disk, -1 if none."""
    res = Result(acked=len(acks), flushed=sum(1 for a in acks if a.seq <= flushed_upto))
    lbs = layout.lbs
    if len(image) != len(snapshot):
        res.violations.append(f"image is {len(image)} bytes, was {len(snapshot)}")
        return res
    newest = records.newest_per_sector(acks)
    must = records.newest_per_sector(promised_acks(promise, acks, flushed_upto))
    res.promised = len(must)

    for sector, ack in sorted(newest.items()):
        off = sector * records.SECTOR
        got = image[off:off + lbs]
        found: int | None = None  # seq of the valid record of this round found there
        if got == snapshot[off:off + lbs]:
            what = "the snapshot's old content"
        else:
            try:
                rid = records.parse(got)
            except records.BadRecord as e:
                res.violations.append(f"sector {sector}: torn or foreign block ({e})")
                continue
            why = kill_check._issued_here(rid, disk, generation, sector, NO_BOUND, layout)
            if why:
                res.violations.append(f"sector {sector}: a record the agent did not issue here: {why}")
                continue
            found = rid.seq
            what = f"seq {rid.seq}"
        need = must.get(sector)
        if need is not None:
            if found is not None and found >= need.seq:
                res.verified += 1
            else:
                res.violations.append(f"sector {sector}: promised seq {need.seq} "
                                      f"({'acked' if promise == 'acked' else 'flushed'}) lost, holds {what}")
                continue
        if found is None or found < ack.seq:
            res.lost += 1
            res.lost_flushed += ack.seq <= flushed_upto
        elif found > ack.seq:
            res.landed_unacked += 1

    for off in _differing_blocks(snapshot, image, lbs):
        sector = off // records.SECTOR
        if sector in newest:
            continue  # judged above
        try:
            rid = records.parse(image[off:off + lbs])
        except records.BadRecord as e:
            res.violations.append(f"sector {sector}: changed, but holds no valid record ({e})")
            continue
        why = kill_check._issued_here(rid, disk, generation, sector, NO_BOUND, layout)
        if why:
            res.violations.append(f"sector {sector}: changed to a record the agent did not issue here: {why}")
        else:
            res.landed_unacked += 1
    return res
