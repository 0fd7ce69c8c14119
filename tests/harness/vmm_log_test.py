#!/usr/bin/env python3
"""framework.vmm_log on lines in the formats storage/disk_stats.cpp and
devices/virtio_blk/ring_report.cpp write (their C++ tests pin those
formats): every counter by name, the last line per disk, bytes or text,
lines with a timestamp prefix, and a clear error for a missing counter."""
import unittest

from framework import vmm_log

STATS_0 = ("2026-12-03T10:00:00.000 [info] disk 0 stats: reads=40 writes=12 dsync_writes=9 "
           "batched_durable_writes=3 flush_requests=2 fdatasyncs=1 discards=0 write_zeroes=0 "
           "at_risk_bytes=4096 at_risk_requests=1 flush_p50_us=80 flush_p99_us=95 flush_max_us=120")
STATS_0_LATER = STATS_0.replace("reads=40", "reads=41")
STATS_1 = "disk 1 stats: reads=1 writes=0"
RING = ("[info] ring disk=2 queue=1 ready=1 avail_idx=9 last_avail=7 used_idx=5 "
        "in_flight=2 needs_reset=0 io_loop=unresponsive")


class StatsLines(unittest.TestCase):
    def test_every_counter_by_name(self):
        s = vmm_log.parse_stats_line(STATS_0)
        self.assertEqual(s.disk, 0)
        self.assertEqual(s["reads"], 40)
        self.assertEqual(s["batched_durable_writes"], 3)
        self.assertEqual(s["flush_max_us"], 120)
        self.assertEqual(len(s.counters), 13)

    def test_not_a_stats_line(self):
        self.assertIsNone(vmm_log.parse_stats_line("[info] disk 0: /tmp/a.img cache=none"))

    def test_last_line_per_disk_wins(self):
        log = "\n".join([STATS_0, STATS_1, "noise", STATS_0_LATER])
        self.assertEqual(len(vmm_log.all_stats(log)), 3)
        last = vmm_log.last_stats(log)
        self.assertEqual(sorted(last), [0, 1])
        self.assertEqual(last[0]["reads"], 41)

    def test_bytes_log(self):
        self.assertEqual(vmm_log.last_stats(STATS_0.encode())[0]["writes"], 12)

    def test_missing_counter_names_it(self):
        with self.assertRaisesRegex(KeyError, "disk 1 stats line has no fdatasyncs="):
            vmm_log.parse_stats_line(STATS_1)["fdatasyncs"]


class RingLines(unittest.TestCase):
    def test_fields(self):
        (r,) = vmm_log.parse_rings("x\n" + RING + "\ny")
        self.assertEqual((r.disk, r.queue, r.ready, r.avail_idx, r.last_avail, r.used_idx, r.in_flight),
                         (2, 1, True, 9, 7, 5, 2))
        self.assertFalse(r.needs_reset)
        self.assertFalse(r.loop_answered)
        self.assertEqual(r.untaken, 2)

    def test_answered_loop_and_bytes(self):
        (r,) = vmm_log.parse_rings(RING.replace("unresponsive", "ok").encode())
        self.assertTrue(r.loop_answered)


if __name__ == "__main__":
    unittest.main(verbosity=2)
