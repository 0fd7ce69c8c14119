"""Host-side twin of the guest agent's workload records (guest/agent/record.h).

A record is one logical block that names the disk, sequence number, sector,
generation and seed it was written for, filled with a payload derived from
those fields and ended by a CRC-32 (zlib's) over everything before it:

    off  size  field (little-endian)
      0     8  magic b"MVMMREC1"
      8     4  record size in bytes (the disk's logical block size)
     12     4  disk index (vda = 0)
     16     8  sequence number
     24     8  sector (512-byte units) the record was written to
     32     4  generation
     36     4  seed
     40  size-44  payload: xorshift32 words
 size-4     4  CRC-32 of bytes [0, size-4)

Used by the end-to-end test and, later, the crash tests: `build` makes the
exact bytes the guest writes, `parse` validates a block found in an image,
`check_acked` says whether every acknowledged write is byte-exact in an image
and `scan` finds every record an image holds. Standard library only.
"""
from __future__ import annotations

import dataclasses
import struct
import zlib
from typing import Iterable, Iterator

MAGIC = b"MVMMREC1"
HEADER = struct.Struct("<8sIIQQII")  # magic, size, disk, seq, sector, generation, seed
SECTOR = 512
MIN_SIZE = 512
MASK32 = 0xFFFFFFFF


@dataclasses.dataclass(frozen=True)
class RecordId:
    disk: int
    seq: int
    sector: int
    generation: int
    seed: int


def _payload_seed(rid: RecordId) -> int:
    # Mirrors payload_seed() in guest/agent/record.c, u32 arithmetic.
    x = rid.seed & MASK32
    x ^= ((rid.disk + 1) * 0x9E3779B9) & MASK32
    x ^= ((rid.seq & MASK32) * 0x85EBCA6B) & MASK32
    x ^= (((rid.seq >> 32) & MASK32) * 0xC2B2AE35) & MASK32
    x ^= ((rid.generation & MASK32) * 0x27D4EB2F) & MASK32
    return x or 1


def build(rid: RecordId, size: int = SECTOR) -> bytes:
    """The exact bytes the guest agent writes for `rid` in a block of `size` bytes."""
    if size < MIN_SIZE or size % 4:
        raise ValueError(f"record size {size}: must be a multiple of 4 and >= {MIN_SIZE}")
    out = bytearray(HEADER.pack(MAGIC, size, rid.disk, rid.seq, rid.sector, rid.generation, rid.seed))
    x = _payload_seed(rid)
    words = []
    for _ in range((size - HEADER.size - 4) // 4):
        x ^= (x << 13) & MASK32
        x ^= x >> 17
        x ^= (x << 5) & MASK32
        words.append(x)
    out += struct.pack(f"<{len(words)}I", *words)
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


class BadRecord(ValueError):
    """A block that is not a valid record; the message says what is wrong."""


def parse(block: bytes) -> RecordId:
    """Validates a block read from an image (magic, size, CRC, payload) and returns its identity."""
    if len(block) < MIN_SIZE:
        raise BadRecord(f"block of {len(block)} bytes is shorter than a record")
    magic, size, disk, seq, sector, generation, seed = HEADER.unpack_from(block)
    if magic != MAGIC:
        raise BadRecord(f"magic {magic!r}, expected {MAGIC!r}")
    if size != len(block):
        raise BadRecord(f"record size field {size}, block is {len(block)} bytes")
    (crc,) = struct.unpack_from("<I", block, size - 4)
    if zlib.crc32(block[: size - 4]) != crc:
        raise BadRecord(f"CRC 0x{crc:08x} does not match the contents "
                        f"(disk {disk} seq {seq} sector {sector})")
    rid = RecordId(disk, seq, sector, generation, seed)
    if build(rid, size) != bytes(block):
        raise BadRecord(f"payload differs from the one disk {disk} seq {seq} would carry")
    return rid


def read_block(image, sector: int, size: int = SECTOR) -> bytes:
    """`size` bytes at 512-byte `sector` of an open binary file."""
    image.seek(sector * SECTOR)
    return image.read(size)


@dataclasses.dataclass(frozen=True)
class Ack:
    """A write the guest saw complete: `agent ack <disk> <seq> <sector>`."""
    disk: int
    seq: int
    sector: int


def newest_per_sector(acks: Iterable[Ack]) -> dict[int, Ack]:
    """Each sector's last acknowledged write (highest seq): what it must hold now."""
    newest: dict[int, Ack] = {}
    for a in acks:
        if a.sector not in newest or a.seq > newest[a.sector].seq:
            newest[a.sector] = a
    return newest


def check_acked(image_path: str, acks: Iterable[Ack], generation: int, seed: int,
                size: int = SECTOR, allow_newer: bool = False) -> list[str]:
    """Problems found: every sector's newest acknowledged record must be in the image, byte-exact.

    allow_newer (crash tests): a sector may instead hold a valid, later record
    of the same disk and generation written for that very sector -- a write
    that completed but whose ack line the kill cut off, or one in flight.
    Returns an empty list when all is well; otherwise one line per bad sector.
    """
    problems = []
    with open(image_path, "rb") as image:
        for sector, ack in sorted(newest_per_sector(acks).items()):
            want = build(RecordId(ack.disk, ack.seq, sector, generation, seed), size)
            got = read_block(image, sector, size)
            if got == want:
                continue
            try:
                found = parse(got)
                what = f"holds disk {found.disk} seq {found.seq} gen {found.generation}"
                if (allow_newer and found.seq > ack.seq and found.sector == sector
                        and (found.disk, found.generation, found.seed) == (ack.disk, generation, seed)):
                    continue
            except BadRecord as e:
                what = f"holds no valid record ({e})"
            problems.append(f"{image_path}: sector {sector}: acked disk {ack.disk} seq {ack.seq}, {what}")
    return problems


def scan(image_path: str, size: int = SECTOR) -> Iterator[tuple[int, bytes]]:
    """(sector, block) for every block-aligned block of the image that starts with the magic."""
    with open(image_path, "rb") as image:
        data = image.read()
    pos = data.find(MAGIC)
    while pos >= 0:
        if pos % size == 0:
            yield pos // SECTOR, data[pos:pos + size]
        pos = data.find(MAGIC, pos + 1)
