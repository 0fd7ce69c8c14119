"""The kill and power-cut campaigns' shared layout: one image per cache mode
(distinct sizes tell them apart in the guest) and the guest agent's
continuous plan order (guest/agent workload.c run_continuous), from which the
operation in flight at a kill is inferred."""
from __future__ import annotations

import os
import random
import re

from framework import agent_log
from framework import kill_vm
from framework import records
from framework.cache_modes import MODES

START_SECTOR = 64  # the agent's default; the sectors before it stay zero (no partition table)
# The agent runs one write bio or flush at a time, all disks in turn. After
# the last ack line seen for a disk, the rest of that bio's records (acked,
# lines cut off) and the next bio's (up to multi records: completed with its
# lines cut off, or in flight) may have landed; a later bio cannot have
# started, because the guest prints a bio's ack lines (each one synchronous
# console write by minivmm) before it issues the next request. So
# max_seq = last ack seq + multi.
PROBED = re.compile(r"virtio_blk virtio\d+: \[vd([a-z])\] (\d+) 512-byte logical blocks")


def image_bytes(index: int) -> int:
    return (4 + index) << 20


def make_images(workdir: str, seed: int) -> list[str]:
    """Five images filled with seeded noise (zero before START_SECTOR), so a block that
    reverts to zeros or to anything else is caught as foreign."""
    rng = random.Random(f"images-{seed}")
    paths = []
    for i, mode in enumerate(MODES):
        path = os.path.join(workdir, f"{i}-{mode}.img")
        size = image_bytes(i)
        head = START_SECTOR * records.SECTOR
        kill_vm.write_file(path, bytes(head) + rng.randbytes(size - head))
        paths.append(path)
    return paths


def flush_follows(bio: int, flush_every: int, multi: int) -> bool:
    """Whether the agent flushes after write bio number `bio` (from 0) of a disk: it counts
    records since the last flush (multi per bio in the continuous plan) and flushes once
    they reach flush_every."""
    if not flush_every:
        return False
    bios_per_flush = -(-flush_every // multi)  # ceil
    return (bio + 1) % bios_per_flush == 0


def in_flight(console: list[str], flush_every: int, disks: int,
              multi: int = 1) -> tuple[str, int] | None:
    """The operation the agent had started when killed: the one after its last complete line.

    Continuous plan order (workload.c run_continuous): one write bio of `multi`
    records on disk d, its ack lines; a flush of disk d if the records since the
    last flush reached flush_every; disk d+1. A kill between two ack lines of one
    bio counts as that disk's write."""
    last = None
    for line in console:
        m = re.search(r"agent (ack|flushed) (\d+) (\d+)", line)
        if m:
            last = (m.group(1), int(m.group(2)), int(m.group(3)))
    if last is None:
        return None
    kind, disk, seq = last
    if kind == "ack" and (seq + 1) % multi:
        return "write", disk
    if kind == "ack" and flush_follows(seq // multi, flush_every, multi):
        return "flush", disk
    return "write", (disk + 1) % disks


def guest_disks(log: agent_log.AgentLog, lbs_ok=(512,)) -> tuple[dict[int, int], list[str]]:
    """Image index -> guest disk index, by capacity; problems if not all five are seen."""
    by_capacity = {image_bytes(i) // records.SECTOR: i for i in range(len(MODES))}
    mapping, problems = {}, []
    for disk, info in sorted(log.disks.items()):
        i = by_capacity.get(info.capacity)
        if i is None:
            problems.append(f"guest disk {disk} has capacity {info.capacity}, not one of the images")
        elif info.lbs not in lbs_ok:
            problems.append(f"{MODES[i]}: logical block size {info.lbs}")
        else:
            mapping[i] = disk
    for i, mode in enumerate(MODES):
        if i not in mapping:
            problems.append(f"{mode}: the guest did not see this image's disk")
    return mapping, problems
