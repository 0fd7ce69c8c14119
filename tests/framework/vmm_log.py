"""minivmm's machine-readable log lines, parsed in one place.

  disk N stats: reads=.. writes=.. ... flush_max_us=..   (storage/disk_stats.cpp:
      one per disk at exit and on SIGUSR1)
  ring disk=N queue=M ready=.. ... io_loop=ok|unresponsive   (devices/virtio_blk/
      ring_report.cpp: one per virtio-blk queue on SIGUSR1)

Both are read as `key=value` pairs, so a counter added at the end of a line
does not break the tests that do not use it; a line missing a counter that a
test reads raises KeyError naming it.
"""
from __future__ import annotations

import dataclasses
import re

_STATS = re.compile(r"disk (\d+) stats: ((?:\w+=\d+ ?)+)")
_RING = re.compile(r"ring disk=(\d+) queue=(\d+) ((?:\w+=\w+ ?)+)")
_PAIR = re.compile(r"(\w+)=(\w+)")


@dataclasses.dataclass(frozen=True)
class DiskStats:
    """One `disk N stats:` line: its counters by name, in the line's order."""
    disk: int
    counters: dict[str, int]

    def __getitem__(self, name: str) -> int:
        if name not in self.counters:
            raise KeyError(f"disk {self.disk} stats line has no {name}= (has: {' '.join(self.counters)})")
        return self.counters[name]


def _text(log: str | bytes) -> str:
    return log.decode(errors="replace") if isinstance(log, bytes) else log


def parse_stats_line(line: str | bytes) -> DiskStats | None:
    """The `disk N stats:` line in `line`, or None if it holds none."""
    m = _STATS.search(_text(line))
    if not m:
        return None
    return DiskStats(int(m[1]), {k: int(v) for k, v in _PAIR.findall(m[2])})


def all_stats(log: str | bytes) -> list[DiskStats]:
    """Every `disk N stats:` line of the log, in order (SIGUSR1 reports and the exit one)."""
    return [s for s in map(parse_stats_line, _text(log).splitlines()) if s]


def last_stats(log: str | bytes) -> dict[int, DiskStats]:
    """Disk index -> its last `disk N stats:` line (at exit: the final counters)."""
    return {s.disk: s for s in all_stats(log)}


@dataclasses.dataclass(frozen=True)
class Ring:
    """One `ring disk=.. queue=..` line."""
    disk: int
    queue: int
    ready: bool
    avail_idx: int
    last_avail: int
    used_idx: int
    in_flight: int
    needs_reset: bool
    loop_answered: bool

    @property
    def key(self):
        return (self.disk, self.queue)

    @property
    def untaken(self):
        """Chains the guest published that the device has not taken."""
        return (self.avail_idx - self.last_avail) % 65536

    def __str__(self):
        if not self.ready:
            return f"disk {self.disk} queue {self.queue}: not set up by the guest"
        return (f"disk {self.disk} queue {self.queue}: avail_idx={self.avail_idx} "
                f"last_avail={self.last_avail} used_idx={self.used_idx} in_flight={self.in_flight}"
                f"{' needs_reset' if self.needs_reset else ''}"
                f"{'' if self.loop_answered else ' io_loop=unresponsive'}")


def parse_rings(log: str | bytes) -> list[Ring]:
    """Every `ring disk=.. queue=..` line of the log, in order."""
    out = []
    for m in _RING.finditer(_text(log)):
        kv = dict(_PAIR.findall(m[3]))
        out.append(Ring(int(m[1]), int(m[2]), kv["ready"] == "1", int(kv["avail_idx"]),
                        int(kv["last_avail"]), int(kv["used_idx"]), int(kv["in_flight"]),
                        kv["needs_reset"] == "1", kv["io_loop"] == "ok"))
    return out
