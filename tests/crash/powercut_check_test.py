#!/usr/bin/env python3
"""powercut_check.check_image on synthetic images: each promise kept and broken, each kind of damage.

No VM: images are built here from records.build, as the agent would write them.
"""
from __future__ import annotations

import random
import sys
import unittest

sys.dont_write_bytecode = True
from framework import kill_check
from framework import powercut_check
from framework import powercut_totals
from framework import records

DISK, GEN, SEED, SPAN, MULTI = 2, 5, 12345, 16, 4
LAYOUT = kill_check.Layout(SPAN, 64, 512, SEED, MULTI)
SIZE = 1 << 20


def snapshot() -> bytes:
    rng = random.Random(1)
    return bytes(64 * 512) + rng.randbytes(SIZE - 64 * 512)


def rec(seq: int, generation: int = GEN, disk: int = DISK, sector: int | None = None) -> bytes:
    s = LAYOUT.sector_of(seq) if sector is None else sector
    return records.build(records.RecordId(disk, seq, s, generation, SEED))


def put(image: bytearray, sector: int, block: bytes) -> None:
    image[sector * 512:sector * 512 + len(block)] = block


def acks(seqs) -> list[records.Ack]:
    return [records.Ack(DISK, s, LAYOUT.sector_of(s)) for s in seqs]


def written(seqs) -> bytearray:
    img = bytearray(snapshot())
    for s in seqs:
        put(img, LAYOUT.sector_of(s), rec(s))
    return img


def check(img, ack_seqs, flushed_upto, promise) -> powercut_check.Result:
    return powercut_check.check_image(snapshot(), bytes(img), acks(ack_seqs), flushed_upto, DISK, GEN,
                                      LAYOUT, promise)


class PromiseTest(unittest.TestCase):
    def test_all_acked_present_passes_every_mode(self):
        img = written(range(12))
        for promise in ("acked", "flushed", "nothing"):
            r = check(img, range(12), 7, promise)
            self.assertEqual(r.violations, [], promise)
            self.assertEqual((r.acked, r.flushed, r.lost), (12, 8, 0))
        self.assertEqual(check(img, range(12), 7, "acked").verified, 12)
        self.assertEqual(check(img, range(12), 7, "flushed").verified, 8)

    def test_writethrough_loses_an_acked_record(self):
        img = written(range(11))  # seq 11 acked, never reached the disk
        r = check(img, range(12), 7, "acked")
        self.assertEqual(len(r.violations), 1)
        self.assertIn("promised seq 11 (acked) lost, holds the snapshot's old content", r.violations[0])

    def test_flushed_record_lost_is_a_violation_unflushed_is_allowed(self):
        img = written(range(6))  # 0..7 flushed; 6, 7 (flushed) and 8..11 (not) lost
        r = check(img, range(12), 7, "flushed")
        self.assertEqual(len(r.violations), 2, r.violations)
        self.assertTrue(all("(flushed) lost" in v for v in r.violations))
        r = check(written(range(8)), range(12), 7, "flushed")
        self.assertEqual(r.violations, [])
        self.assertEqual((r.lost, r.lost_flushed, r.verified), (4, 0, 8))

    def test_unsafe_counts_losses_including_flushed_ones(self):
        r = check(snapshot(), range(12), 7, "nothing")
        self.assertEqual(r.violations, [])
        self.assertEqual((r.lost, r.lost_flushed, r.promised), (12, 8, 0))

    def test_overwritten_slot_older_record_than_promised(self):
        # span 16: seq 3 and 19 share a sector; 19 flushed, the disk holds 3.
        img = written(range(16))
        r = check(img, range(20), 19, "flushed")
        self.assertEqual(len(r.violations), 4, r.violations)
        self.assertIn("holds seq 3", " ".join(r.violations))
        # Not promised (flush only up to 15): the older record is a loss, not a violation.
        r = check(img, range(20), 15, "flushed")
        self.assertEqual(r.violations, [])
        self.assertEqual(r.lost, 4)

    def test_later_unacked_record_satisfies_the_promise(self):
        img = written(range(12))
        put(img, LAYOUT.sector_of(4 + SPAN), rec(4 + SPAN))  # far beyond the last ack seen
        r = check(img, range(12), 11, "acked")
        self.assertEqual(r.violations, [])
        self.assertEqual((r.verified, r.landed_unacked), (12, 1))
        img = written(range(12))
        put(img, LAYOUT.sector_of(13), rec(13))  # unacked, on a sector without acks
        r = check(img, range(12), 11, "nothing")
        self.assertEqual((r.violations, r.landed_unacked), ([], 1))


class DamageTest(unittest.TestCase):
    def test_torn_record_is_caught_in_every_mode(self):
        img = written(range(12))
        off = LAYOUT.sector_of(5) * 512
        img[off + 256:off + 512] = snapshot()[off + 256:off + 512]
        for promise in ("acked", "flushed", "nothing"):
            r = check(img, range(12), 7, promise)
            self.assertEqual(len(r.violations), 1, promise)
            self.assertIn("torn or foreign", r.violations[0])

    def test_foreign_and_misplaced_records(self):
        img = written(range(12))
        put(img, LAYOUT.sector_of(2), rec(2, generation=GEN - 1))
        put(img, LAYOUT.sector_of(3), rec(3, disk=DISK + 1))
        free = 64 + SPAN + 10  # outside the record area
        put(img, free, rec(1, sector=free))
        r = check(img, range(12), 11, "nothing")
        self.assertEqual(len(r.violations), 3, r.violations)
        text = " ".join(r.violations)
        self.assertIn(f"generation {GEN - 1}", text)
        self.assertIn(f"disk {DISK + 1}", text)
        self.assertIn(f"sector {free}: changed to a record", text)

    def test_zeroed_block_outside_records_is_caught(self):
        img = written(range(4))
        put(img, 900, bytes(512))
        r = check(img, range(4), 3, "nothing")
        self.assertEqual(len(r.violations), 1)
        self.assertIn("sector 900: changed, but holds no valid record", r.violations[0])

    def test_size_change(self):
        r = check(written(range(4)) + bytes(512), range(4), 3, "nothing")
        self.assertIn("bytes, was", r.violations[0])


class RiskCrossCheck(unittest.TestCase):
    """The power-cut campaign's bound: lost bytes <= at risk in the last report + acked after its SIGUSR1."""

    def setUp(self):
        self.pc = powercut_totals

    def lines(self):
        return [(0, "[    1.0] agent ack 0 1 64"), (0, 'PC usr1 {"k":1}'),
                (0, "[    1.1] agent ack 0 2 65"), (0, "[    1.1] agent ack 4 1 65"),
                (0, 'PC risk {"k":1,"disks":[[1024,1,0,0,0],[0,0,0,0,0],[0,0,0,0,0],[0,0,0,0,0],'
                    '[2048,1,0,0,0]]}'),
                (0, "[    1.2] agent ack 0 3 66"), (0, 'PC usr1 {"k":2}'),  # report 2 never came
                (0, "[    1.3] agent ack 0 4 67")]

    def test_last_complete_report_and_acks_after_its_signal(self):
        risk = self.pc.risk_before_cut(self.lines(), [0, 1, 2, 3, 4])
        self.assertEqual(risk["k"], 1)
        self.assertEqual(risk["at_risk_bytes"], [1024, 0, 0, 0, 2048])
        # Acks after the `PC usr1` marker, also those before the report line itself.
        self.assertEqual(risk["acked_after"], [3, 0, 0, 0, 1])
        self.assertIsNone(self.pc.risk_before_cut(self.lines()[:3], [0, 1, 2, 3, 4]))

    def check_result(self, lost):
        return {"round": 1, "images": {m: {"acked": 4, "flushed": 0, "promised": 0, "verified": 0,
                                           "lost": lost.get(m, 0), "lost_flushed": 0, "landed_unacked": 0,
                                           "violation_count": 0, "violations": []}
                                       for m in self.pc.MODES}}

    def test_bound_holds_and_breaks(self):
        risk = self.pc.risk_before_cut(self.lines(), [0, 1, 2, 3, 4])
        # writeback (image 0): 1024 + 3*512 = 2560 bytes may be lost: 5 records are allowed.
        totals = [self.pc.ModeTotals() for _ in self.pc.MODES]
        bad, detail = set(), []
        self.pc.account(self.check_result({"writeback": 5, "unsafe": 5}), totals, bad, detail, risk)
        self.assertEqual(bad, set(), detail)
        self.assertEqual(totals[0].lost_bytes, 2560)
        self.assertEqual(totals[0].risk_cuts, 1)
        # One more record lost than the window allowed: a violation of exactly that mode.
        totals = [self.pc.ModeTotals() for _ in self.pc.MODES]
        self.pc.account(self.check_result({"writeback": 6, "writethrough": 1}), totals, bad, detail, risk)
        self.assertEqual(bad, {"writeback", "writethrough"})
        self.assertEqual(totals[0].risk_violations, 1)
        self.assertIn("more than minivmm reported at risk", detail[0])


if __name__ == "__main__":
    unittest.main(verbosity=1)
