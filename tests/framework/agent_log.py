"""Parses the guest agent's machine-readable console lines (docs/guests.md "Guest agent").

    agent disk <d> capacity=<sectors> lbs=<n> features=0x<hex> write_cache=<0|1>
    agent ack <d> <seq> <sector>
    agent flushed <d> <seq>
    agent wce <d> <0|1>
    agent phase <d> <p> write_cache=<0|1> writes=<n> us_per_write=<n> flushes=<n> us_per_flush=<n>
    agent verified <d> records=<n> bad=<n>
    agent timing <d> writes=<n> us_per_write=<n> flushes=<n> us_per_flush=<n>
    agent verdict pass|fail <reason>

Each line may carry the kernel's "[    1.234567] " timestamp in front. Lines
are kept in console order, so events (a flip of the write cache, a flush) can
be placed between acks. Standard library only; shared with the crash tests.
"""
from __future__ import annotations

import dataclasses
import re

from framework.records import Ack

_PREFIX = r"^(?:\[\s*[\d.]+\]\s+)?agent "
_PATTERNS = {
    "disk": re.compile(_PREFIX + r"disk (\d+) capacity=(\d+) lbs=(\d+) features=0x([0-9a-f]+) write_cache=([01])$"),
    "ack": re.compile(_PREFIX + r"ack (\d+) (\d+) (\d+)$"),
    "flushed": re.compile(_PREFIX + r"flushed (\d+) (\d+)$"),
    "wce": re.compile(_PREFIX + r"wce (\d+) ([01])$"),
    "phase": re.compile(_PREFIX + r"phase (\d+) (\d+) write_cache=([01]) writes=(\d+) us_per_write=(\d+) "
                        r"flushes=(\d+) us_per_flush=(\d+)$"),
    "verified": re.compile(_PREFIX + r"verified (\d+) records=(\d+) bad=(\d+)$"),
    "timing": re.compile(_PREFIX + r"timing (\d+) writes=(\d+) us_per_write=(\d+) flushes=(\d+) us_per_flush=(\d+)$"),
    "verdict": re.compile(_PREFIX + r"verdict (pass|fail) ?(.*)$"),
}


@dataclasses.dataclass
class DiskInfo:
    capacity: int  # 512-byte sectors
    lbs: int
    features: int
    write_cache: bool


@dataclasses.dataclass
class Phase:
    index: int
    write_cache: bool
    writes: int
    us_per_write: int
    flushes: int
    us_per_flush: int


@dataclasses.dataclass
class Timing:
    writes: int
    us_per_write: int
    flushes: int
    us_per_flush: int


@dataclasses.dataclass
class AgentLog:
    disks: dict[int, DiskInfo] = dataclasses.field(default_factory=dict)
    acks: list[Ack] = dataclasses.field(default_factory=list)
    flushes: list[tuple[int, int]] = dataclasses.field(default_factory=list)  # (disk, last seq covered)
    # Console-ordered events per disk: ("ack", seq) / ("flushed", seq) / ("wce", 0|1)
    events: dict[int, list[tuple[str, int]]] = dataclasses.field(default_factory=dict)
    phases: dict[int, list[Phase]] = dataclasses.field(default_factory=dict)
    verified: dict[int, tuple[int, int]] = dataclasses.field(default_factory=dict)  # records, bad
    timing: dict[int, Timing] = dataclasses.field(default_factory=dict)
    verdict: tuple[str, str] | None = None
    errors: list[str] = dataclasses.field(default_factory=list)  # agent error/mismatch lines

    def acks_of(self, disk: int) -> list[Ack]:
        return [a for a in self.acks if a.disk == disk]

    def flushes_of(self, disk: int) -> list[int]:
        return [seq for d, seq in self.flushes if d == disk]


def parse(console: str) -> AgentLog:
    log = AgentLog()
    for raw in console.splitlines():
        line = raw.strip()
        if "agent " not in line:
            continue
        for kind, pattern in _PATTERNS.items():
            m = pattern.match(line)
            if m:
                _add(log, kind, m.groups())
                break
        else:
            if re.search(_PREFIX + r"(error|mismatch) ", line):
                log.errors.append(line)
    return log


def _add(log: AgentLog, kind: str, g: tuple[str, ...]) -> None:
    if kind == "verdict":
        log.verdict = (g[0], g[1])
        return
    disk = int(g[0])
    events = log.events.setdefault(disk, [])
    if kind == "disk":
        log.disks[disk] = DiskInfo(int(g[1]), int(g[2]), int(g[3], 16), g[4] == "1")
    elif kind == "ack":
        log.acks.append(Ack(disk, int(g[1]), int(g[2])))
        events.append(("ack", int(g[1])))
    elif kind == "flushed":
        log.flushes.append((disk, int(g[1])))
        events.append(("flushed", int(g[1])))
    elif kind == "wce":
        events.append(("wce", int(g[1])))
    elif kind == "phase":
        log.phases.setdefault(disk, []).append(Phase(int(g[1]), g[2] == "1", *map(int, g[3:])))
    elif kind == "verified":
        log.verified[disk] = (int(g[1]), int(g[2]))
    elif kind == "timing":
        log.timing[disk] = Timing(*map(int, g[1:]))
