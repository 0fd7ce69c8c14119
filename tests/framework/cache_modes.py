"""The five disk cache modes (docs/cache-modes.md), defined once for the tests.

MODES is in storage/cache_mode.h's enum order, which is also the order the
tests give their disks in; TRAITS mirrors that header's traits() table.
tests/harness/cache_modes_test.py checks both against the header, so a mode
added or changed there fails the harness unit tests until it is added here.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Traits:
    write_cache: bool     # the guest is told it has a volatile write cache
    direct: bool          # host page cache bypassed (O_DIRECT)
    flush_honoured: bool  # a guest flush becomes a host fdatasync


TRAITS = {
    "writeback": Traits(write_cache=True, direct=False, flush_honoured=True),
    "none": Traits(write_cache=True, direct=True, flush_honoured=True),
    "writethrough": Traits(write_cache=False, direct=False, flush_honoured=True),
    "directsync": Traits(write_cache=False, direct=True, flush_honoured=True),
    "unsafe": Traits(write_cache=True, direct=False, flush_honoured=False),
}
MODES = list(TRAITS)
# Modes whose guest sees a volatile write cache: completion promises nothing
# until a flush.
WRITE_BACK = {m for m, t in TRAITS.items() if t.write_cache}
# Modes that open the image O_DIRECT.
DIRECT = {m for m, t in TRAITS.items() if t.direct}
