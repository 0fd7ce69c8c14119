"""The process-kill promise, checked on one disk image after a SIGKILL.

cache-modes.md "What survives what": killing the VMM keeps every write the
host kernel accepted, in every cache mode. So after a kill, against a copy of
the image taken before the boot (the "snapshot"):

  acked    every sector's newest acknowledged record (`agent ack`) is there,
           byte-exact -- or a later record the agent issued for that same
           sector (its ack line was cut off by the kill, or it was in flight)
  others   every block that differs from the snapshot holds a complete,
           valid record the agent issued in this boot: right magic, size,
           CRC and payload, this disk's index, this boot's generation and
           seed, written for this very sector, with a seq that maps to this
           sector and that the agent could have reached (<= max_seq)
  size     the image kept its size

A record is one logical block, so checking block by block is checking at
record granularity: a torn record fails its CRC/payload, stale or stray data
differs from both the snapshot and any issued record. With multi > 1 one
request carries several records; each may land or not on its own, but each
changed block must still be one complete record.

Where the agent puts seq (guest/agent/workload.c seq_slot()): with
r = seq % span, groups = span / multi, slot = ((r // multi) * stride % groups)
* multi + r % multi, sector = start_sector + slot * lbs/512, with stride
derived from the seed over the groups (slot_stride()); multi = 1 gives
slot = r * stride % span. `sector_of` mirrors it. Standard library only.
"""
from __future__ import annotations

import dataclasses
import math

from framework import records

MASK32 = 0xFFFFFFFF


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where one disk's records go: the agent's plan parameters plus the disk's block size."""
    span: int
    start_sector: int
    lbs: int
    seed: int
    multi: int = 1  # records per write bio: groups of `multi` contiguous slots

    def groups(self) -> int:
        return self.span // self.multi

    def stride(self) -> int:
        # Mirrors slot_stride(seed, span / multi) in guest/agent/workload.c (u32 arithmetic).
        groups = self.groups()
        s = (((self.seed * 2654435761) & MASK32) >> 16) % groups
        if not s:
            s = 1
        while math.gcd(s, groups) != 1:
            s = s % (groups - 1) + 1
        return s

    def sector_of(self, seq: int) -> int:
        r = seq % self.span
        slot = ((r // self.multi) * self.stride()) % self.groups() * self.multi + r % self.multi
        return self.start_sector + slot * (self.lbs // records.SECTOR)


@dataclasses.dataclass
class DiskResult:
    acked: int = 0        # ack lines
    verified: int = 0     # newest acked record per sector, found intact (or superseded by an issued later one)
    superseded: int = 0   # acked, then overwritten in the same sector by a later acked write
    landed_unacked: int = 0  # complete records with no ack line (cut off, or in flight at the kill)
    violations: list[str] = dataclasses.field(default_factory=list)


def _issued_here(rid: records.RecordId, disk: int, generation: int, sector: int,
                 max_seq: int, layout: Layout) -> str | None:
    """None if `rid`, found at `sector`, is a record the agent may have written there; else why not."""
    if (rid.disk, rid.generation, rid.seed) != (disk, generation, layout.seed):
        return (f"record of disk {rid.disk} generation {rid.generation} seed {rid.seed}, "
                f"expected disk {disk} generation {generation} seed {layout.seed}")
    if rid.sector != sector:
        return f"record written for sector {rid.sector}"
    if rid.seq > max_seq:
        return f"seq {rid.seq} beyond the last the agent could have issued ({max_seq})"
    if layout.sector_of(rid.seq) != sector:
        return f"seq {rid.seq} belongs in sector {layout.sector_of(rid.seq)}"
    return None


def check_disk(snapshot: bytes, image: bytes, acks: list[records.Ack], disk: int,
               generation: int, layout: Layout, max_seq: int) -> DiskResult:
    """Checks one image after a kill; see the module docstring for the rules."""
    res = DiskResult(acked=len(acks))
    lbs = layout.lbs
    if len(image) != len(snapshot):
        res.violations.append(f"image is {len(image)} bytes, was {len(snapshot)}")
        return res

    newest = records.newest_per_sector(acks)
    res.superseded = len(acks) - len(newest)
    for sector, ack in sorted(newest.items()):
        off = sector * records.SECTOR
        got = image[off:off + lbs]
        want = records.build(records.RecordId(disk, ack.seq, sector, generation, layout.seed), lbs)
        if got == want:
            res.verified += 1
            continue
        try:
            rid = records.parse(got)
        except records.BadRecord as e:
            what = "the snapshot's old content" if got == snapshot[off:off + lbs] else f"no valid record ({e})"
            res.violations.append(f"sector {sector}: acked seq {ack.seq} lost, holds {what}")
            continue
        why = _issued_here(rid, disk, generation, sector, max_seq, layout)
        if why is None and rid.seq > ack.seq:
            res.verified += 1  # a later write to the same sector landed; the ack is not contradicted
            res.landed_unacked += 1
            continue
        res.violations.append(f"sector {sector}: acked seq {ack.seq} lost, holds seq {rid.seq}"
                              + (f" ({why})" if why else " (older than the ack)"))

    for off in range(0, len(image), lbs):
        got = image[off:off + lbs]
        if got == snapshot[off:off + lbs]:
            continue
        sector = off // records.SECTOR
        if sector in newest:
            continue  # judged above
        try:
            rid = records.parse(got)
        except records.BadRecord as e:
            res.violations.append(f"sector {sector}: changed, but holds no valid record ({e})")
            continue
        why = _issued_here(rid, disk, generation, sector, max_seq, layout)
        if why:
            res.violations.append(f"sector {sector}: changed to a record the agent did not issue here: {why}")
        else:
            res.landed_unacked += 1
    return res
