#!/usr/bin/env python3
"""The kill campaign's image checker (kill_check.py) on synthetic images: it
accepts what a kill may leave and flags each kind of damage it must catch."""
from __future__ import annotations

import random
import sys
import unittest

sys.dont_write_bytecode = True
from framework import campaign
from framework import kill_check
from framework import records

DISK, GEN, SEED = 2, 7, 5
LAYOUT = kill_check.Layout(span=64, start_sector=64, lbs=512, seed=SEED)
IMAGE = 256 * 1024


def record(seq: int, sector: int | None = None, disk: int = DISK, gen: int = GEN) -> bytes:
    sector = LAYOUT.sector_of(seq) if sector is None else sector
    return records.build(records.RecordId(disk, seq, sector, gen, SEED), 512)


def put(image: bytearray, sector: int, block: bytes) -> None:
    image[sector * 512:sector * 512 + len(block)] = block


class KillCheck(unittest.TestCase):
    def setUp(self):
        self.snapshot = random.Random(1).randbytes(IMAGE)
        self.image = bytearray(self.snapshot)
        # seqs 0..69 acked: 64..69 reuse slots 0..5 (span 64), superseding seqs 0..5.
        self.acks = [records.Ack(DISK, s, LAYOUT.sector_of(s)) for s in range(70)]
        for s in range(70):
            put(self.image, LAYOUT.sector_of(s), record(s))
        self.max_seq = 70  # the next write (seq 70) may have landed with its ack line cut off

    def check(self, acks=None):
        return kill_check.check_disk(self.snapshot, bytes(self.image), self.acks if acks is None else acks,
                                     DISK, GEN, LAYOUT, self.max_seq)

    def assertViolation(self, res, text):
        self.assertTrue(any(text in v for v in res.violations), f"{text!r} not in {res.violations}")

    def test_slot_order_matches_the_guest(self):
        # Printed by the guest (seed 5, span 64): "agent ack 1 0 64", "ack 1 64 64", "ack 0 65 85".
        self.assertEqual([LAYOUT.sector_of(s) for s in (0, 64, 65)], [64, 64, 85])
        self.assertEqual(sorted(LAYOUT.sector_of(s) for s in range(64)), list(range(64, 128)))

    def test_clean_kill_passes(self):
        res = self.check()
        self.assertEqual(res.violations, [])
        self.assertEqual((res.acked, res.verified, res.superseded, res.landed_unacked), (70, 64, 6, 0))

    def test_unacked_issued_write_may_land(self):
        put(self.image, LAYOUT.sector_of(70), record(70))
        res = self.check()
        self.assertEqual(res.violations, [])
        self.assertEqual(res.landed_unacked, 1)

    def test_lost_acked_record(self):
        sector = LAYOUT.sector_of(69)
        put(self.image, sector, self.snapshot[sector * 512:(sector + 1) * 512])
        self.assertViolation(self.check(), f"sector {sector}: acked seq 69 lost, holds the snapshot")

    def test_older_record_of_the_same_boot_at_an_acked_sector(self):
        sector = LAYOUT.sector_of(65)
        put(self.image, sector, record(1))  # seq 1 was superseded by acked seq 65
        self.assertViolation(self.check(), "acked seq 65 lost, holds seq 1 (older than the ack)")

    def test_torn_record(self):
        # Only seqs 0..59 acked, seq 60 (a slot not yet used) in flight and half landed.
        self.image = bytearray(self.snapshot)
        for s in range(60):
            put(self.image, LAYOUT.sector_of(s), record(s))
        sector = LAYOUT.sector_of(60)
        put(self.image, sector, record(60)[:256])
        self.max_seq = 60
        self.assertViolation(self.check(self.acks[:60]), f"sector {sector}: changed, but holds no valid record")
        self.setUp()
        sector = LAYOUT.sector_of(30)  # an acked one, torn: its start over the old content
        put(self.image, sector, record(30)[:200] + self.snapshot[sector * 512 + 200:(sector + 1) * 512])
        self.assertViolation(self.check(), f"sector {sector}: acked seq 30 lost, holds no valid record")

    def test_foreign_data(self):
        put(self.image, 10, bytes(512))  # outside the record area
        self.assertViolation(self.check(), "sector 10: changed, but holds no valid record")

    def test_record_beyond_what_the_agent_issued(self):
        put(self.image, LAYOUT.sector_of(71), record(71))
        self.assertViolation(self.check(), "seq 71 beyond the last the agent could have issued (70)")

    def test_record_of_another_generation_or_disk(self):
        put(self.image, LAYOUT.sector_of(70), record(70, gen=GEN - 1))
        self.assertViolation(self.check(), f"generation {GEN - 1}")
        self.setUp()
        put(self.image, LAYOUT.sector_of(70), record(70, disk=DISK + 1))
        self.assertViolation(self.check(), f"record of disk {DISK + 1}")

    def test_misdirected_write(self):
        # A valid record of this boot, written to a sector other than the one it names.
        put(self.image, 200, record(70))
        self.assertViolation(self.check(), "sector 200: changed to a record the agent did not issue here: "
                                           f"record written for sector {LAYOUT.sector_of(70)}")
        self.setUp()
        # Names its own sector, but that is not where the agent puts this seq.
        put(self.image, 200, record(70, sector=200))
        self.assertViolation(self.check(), f"seq 70 belongs in sector {LAYOUT.sector_of(70)}")

    def test_size_change(self):
        res = kill_check.check_disk(self.snapshot, bytes(self.image[:-512]), self.acks, DISK, GEN,
                                    LAYOUT, self.max_seq)
        self.assertViolation(res, "image is")


MULTI = kill_check.Layout(span=64, start_sector=64, lbs=512, seed=SEED, multi=4)


class MultiSegment(unittest.TestCase):
    """multi=4: each write bio carries 4 records for 4 contiguous sectors."""

    def setUp(self):
        self.snapshot = random.Random(2).randbytes(IMAGE)
        self.image = bytearray(self.snapshot)
        self.acks = [records.Ack(DISK, s, MULTI.sector_of(s)) for s in range(40)]  # 10 bios
        for s in range(40):
            put(self.image, MULTI.sector_of(s), self.record(s))
        self.max_seq = 39 + 4  # the next bio (seqs 40..43) may have landed, any part of it

    @staticmethod
    def record(seq: int, sector: int | None = None) -> bytes:
        sector = MULTI.sector_of(seq) if sector is None else sector
        return records.build(records.RecordId(DISK, seq, sector, GEN, SEED), 512)

    def check(self):
        return kill_check.check_disk(self.snapshot, bytes(self.image), self.acks, DISK, GEN, MULTI,
                                     self.max_seq)

    def test_mapping_matches_the_guest(self):
        # Printed by the guest (seed 5, span 64, multi 4): "agent ack 0 0 64" .. "ack 0 3 67",
        # "ack 0 4 84", "ack 0 8 104", "ack 0 16 80", "ack 0 28 76", "ack 0 320 64".
        self.assertEqual([MULTI.sector_of(s) for s in (0, 1, 2, 3, 4, 8, 16, 28, 320)],
                         [64, 65, 66, 67, 84, 104, 80, 76, 64])
        self.assertEqual(sorted(MULTI.sector_of(s) for s in range(64)), list(range(64, 128)))
        for group in range(16):  # each bio's records: 4 contiguous sectors, in seq order
            first = MULTI.sector_of(4 * group)
            self.assertEqual([MULTI.sector_of(4 * group + i) for i in range(4)],
                             list(range(first, first + 4)))

    def test_multi_1_is_the_single_record_mapping(self):
        one = kill_check.Layout(span=64, start_sector=64, lbs=512, seed=SEED, multi=1)
        self.assertEqual([one.sector_of(s) for s in range(130)], [LAYOUT.sector_of(s) for s in range(130)])
        self.assertNotEqual([MULTI.sector_of(s) for s in range(64)], [LAYOUT.sector_of(s) for s in range(64)])

    def test_part_of_the_in_flight_request_landed(self):
        # Records 0 and 2 of the killed bio landed, 1 and 3 did not: allowed per record.
        for s in (40, 42):
            put(self.image, MULTI.sector_of(s), self.record(s))
        res = self.check()
        self.assertEqual(res.violations, [])
        self.assertEqual(res.landed_unacked, 2)

    def test_torn_record_inside_the_request(self):
        put(self.image, MULTI.sector_of(40), self.record(40))
        sector = MULTI.sector_of(41)
        put(self.image, sector, self.record(41)[:300] + self.snapshot[sector * 512 + 300:(sector + 1) * 512])
        self.assertViolation(self.check(), f"sector {sector}: changed, but holds no valid record")

    def test_records_of_one_request_swapped(self):
        # Segment order lost: seq 41's record in seq 40's sector (naming that sector).
        sector = MULTI.sector_of(40)
        put(self.image, sector, self.record(41, sector=sector))
        self.assertViolation(self.check(), f"seq 41 belongs in sector {MULTI.sector_of(41)}")

    def test_beyond_the_in_flight_request(self):
        put(self.image, MULTI.sector_of(44), self.record(44))
        self.assertViolation(self.check(), "seq 44 beyond the last the agent could have issued (43)")

    def assertViolation(self, res, text):
        self.assertTrue(any(text in v for v in res.violations), f"{text!r} not in {res.violations}")


class InFlight(unittest.TestCase):
    def test_next_operation_after_the_last_line(self):
        lines = ["[ 1.0] agent ack 0 0 64", "[ 1.1] agent ack 1 0 64"]
        self.assertEqual(campaign.in_flight(lines, 2, 5), ("write", 2))
        self.assertEqual(campaign.in_flight(lines + ["agent ack 2 1 70"], 2, 5), ("flush", 2))
        self.assertEqual(campaign.in_flight(lines + ["agent flushed 4 1"], 2, 5), ("write", 0))
        self.assertIsNone(campaign.in_flight(["minivmm-agent: late init reached"], 2, 5))

    def test_multi_segment_requests(self):
        # multi=4, flush_every=2: a flush after every bio; a kill between a bio's ack lines is its write.
        self.assertEqual(campaign.in_flight(["agent ack 1 5 70"], 2, 5, 4), ("write", 1))
        self.assertEqual(campaign.in_flight(["agent ack 1 7 70"], 2, 5, 4), ("flush", 1))
        self.assertEqual(campaign.in_flight(["agent flushed 1 7"], 2, 5, 4), ("write", 2))
        # flush_every=10 with multi=4: records since the flush reach 12 at every third bio.
        self.assertEqual([campaign.flush_follows(b, 10, 4) for b in range(6)],
                         [False, False, True, False, False, True])
        self.assertEqual([campaign.flush_follows(b, 2, 1) for b in range(4)], [False, True, False, True])


if __name__ == "__main__":
    unittest.main(verbosity=2)
