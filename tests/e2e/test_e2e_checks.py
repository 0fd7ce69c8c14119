#!/usr/bin/env python3
"""Unit tests for the end-to-end test's own tools: the record checker (also
used by the crash tests), the agent-line parser and the stats checks. No VM:
synthetic consoles, stats lines and small images."""
import hashlib
import os
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from framework import agent_log
from framework import mode_contract
from framework import records
from framework.records import Ack, RecordId

# sha256 of the 512-byte block the guest agent (guest/agent/record.c) wrote for
# disk 0, seq 0, sector 64, generation 1, seed 1, read from an image after a
# QEMU TCG boot: the kernel's and this module's encodings must agree.
GUEST_RECORD_SHA256 = "7df628a241975cb104e6a941d3750f36048dc7b2bcfcaf213449e400091dd7bb"


class RecordTest(unittest.TestCase):
    def test_matches_a_record_the_guest_wrote(self):
        block = records.build(RecordId(0, 0, 64, 1, 1))
        self.assertEqual(hashlib.sha256(block).hexdigest(), GUEST_RECORD_SHA256)

    def test_parse_returns_the_identity(self):
        rid = RecordId(3, 2**33 + 5, 1234, 9, 77)
        self.assertEqual(records.parse(records.build(rid, 4096)), rid)

    def test_parse_rejects_a_flipped_payload_byte(self):
        block = bytearray(records.build(RecordId(1, 2, 3, 4, 5)))
        block[100] ^= 1
        with self.assertRaisesRegex(records.BadRecord, "CRC"):
            records.parse(bytes(block))

    def test_parse_rejects_a_consistent_crc_over_a_foreign_payload(self):
        import struct
        import zlib
        block = bytearray(records.build(RecordId(1, 2, 3, 4, 5)))
        block[100] ^= 1
        block[-4:] = struct.pack("<I", zlib.crc32(bytes(block[:-4])))
        with self.assertRaisesRegex(records.BadRecord, "payload"):
            records.parse(bytes(block))

    def test_parse_rejects_zeros_and_wrong_size(self):
        with self.assertRaisesRegex(records.BadRecord, "magic"):
            records.parse(bytes(512))
        with self.assertRaisesRegex(records.BadRecord, "size"):
            records.parse(records.build(RecordId(0, 0, 0, 0, 0)) + bytes(512))

    def test_newest_per_sector_takes_the_highest_seq(self):
        acks = [Ack(0, 0, 64), Ack(0, 1, 65), Ack(0, 5, 64), Ack(0, 3, 64)]
        self.assertEqual(records.newest_per_sector(acks), {64: Ack(0, 5, 64), 65: Ack(0, 1, 65)})


class CheckAckedTest(unittest.TestCase):
    def setUp(self):
        fd, self.path = tempfile.mkstemp(suffix=".img")
        os.close(fd)
        os.truncate(self.path, 1 << 20)
        self.addCleanup(os.unlink, self.path)

    def put(self, sector, rid):
        with open(self.path, "r+b") as f:
            f.seek(sector * 512)
            f.write(records.build(rid))

    def test_all_acked_records_present(self):
        self.put(64, RecordId(2, 3, 64, 7, 9))
        self.put(65, RecordId(2, 1, 65, 7, 9))
        acks = [Ack(2, 0, 64), Ack(2, 1, 65), Ack(2, 3, 64)]
        self.assertEqual(records.check_acked(self.path, acks, 7, 9), [])
        self.assertEqual([s for s, _ in records.scan(self.path)], [64, 65])

    def test_older_record_where_a_newer_was_acked(self):
        self.put(64, RecordId(2, 0, 64, 7, 9))
        problems = records.check_acked(self.path, [Ack(2, 0, 64), Ack(2, 3, 64)], 7, 9)
        self.assertEqual(len(problems), 1)
        self.assertIn("acked disk 2 seq 3, holds disk 2 seq 0", problems[0])

    def test_newer_unacked_record_only_allowed_for_crash_tests(self):
        self.put(64, RecordId(2, 4, 64, 7, 9))
        acks = [Ack(2, 3, 64)]
        self.assertEqual(len(records.check_acked(self.path, acks, 7, 9)), 1)
        self.assertEqual(records.check_acked(self.path, acks, 7, 9, allow_newer=True), [])
        self.put(64, RecordId(2, 2, 64, 7, 9))  # older than acked: never fine
        self.assertEqual(len(records.check_acked(self.path, acks, 7, 9, allow_newer=True)), 1)
        self.put(64, RecordId(2, 4, 65, 7, 9))  # newer, but meant for another sector
        self.assertEqual(len(records.check_acked(self.path, acks, 7, 9, allow_newer=True)), 1)

    def test_missing_record_and_wrong_generation(self):
        self.put(65, RecordId(2, 1, 65, 6, 9))
        problems = records.check_acked(self.path, [Ack(2, 0, 64), Ack(2, 1, 65)], 7, 9)
        self.assertEqual(len(problems), 2)
        self.assertIn("no valid record", problems[0])
        self.assertIn("gen 6", problems[1])


CONSOLE = """\
[   17.679686] agent disk 2 capacity=135168 lbs=512 features=0x130006a46 write_cache=0
[   18.439398] agent ack 2 0 64
[   18.452906] agent ack 2 1 65
[   18.483878] agent flushed 2 1
[   18.608298] agent wce 2 1
[   18.617806] agent ack 2 2 64
[   18.678162] agent flushed 2 2
[   18.688424] agent ack 2 3 65
[   18.714693] agent flushed 2 3
[   18.734801] agent wce 2 0
[   18.748340] agent ack 2 4 64
[   18.786561] agent flushed 2 4
[   18.790000] agent phase 2 2 write_cache=0 writes=1 us_per_write=6294 flushes=1 us_per_flush=182
[   18.800000] agent verified 2 records=2 bad=0
[   18.810000] agent timing 2 writes=5 us_per_write=4000 flushes=4 us_per_flush=100
[   18.820000] agent error 2 read sector=64 err=-5
[   18.900000] agent verdict pass all disks written, flushed and verified
"""
PLAN = {"writes": 2, "flush_every": 4, "toggle_writes": 2}


class AgentLogTest(unittest.TestCase):
    def test_parses_every_kind_in_order(self):
        log = agent_log.parse(CONSOLE)
        self.assertEqual(log.disks[2].capacity, 135168)
        self.assertFalse(log.disks[2].write_cache)
        self.assertEqual(log.disks[2].features, 0x130006A46)
        self.assertEqual([a.seq for a in log.acks_of(2)], [0, 1, 2, 3, 4])
        self.assertEqual(log.flushes_of(2), [1, 2, 3, 4])
        self.assertEqual([k for k, _ in log.events[2]],
                         ["ack", "ack", "flushed", "wce", "ack", "flushed", "ack", "flushed",
                          "wce", "ack", "flushed"])
        self.assertEqual(log.phases[2][0].us_per_write, 6294)
        self.assertEqual(log.verified[2], (2, 0))
        self.assertEqual(log.timing[2].flushes, 4)
        self.assertEqual(log.verdict, ("pass", "all disks written, flushed and verified"))
        self.assertEqual(len(log.errors), 1)

    def test_phase_counts_follow_the_wce_events(self):
        counts = mode_contract.phase_counts(agent_log.parse(CONSOLE), 2, False)
        self.assertEqual(counts, {False: {"acks": 3, "flushes": 2}, True: {"acks": 2, "flushes": 2}})


class StatsCheckTest(unittest.TestCase):
    """Stats tuples: (reads, writes, dsync_writes, flush_requests, fdatasyncs) for CONSOLE's
    disk: 5 acked writes, 4 completed flushes; as writethrough, 3 writes and 2 flushes
    with the cache off, 2 and 2 while the guest had switched it on."""

    def failures(self, mode, stat, console=CONSOLE):
        log = agent_log.parse(console)
        c = mode_contract.Checks()
        mode_contract.check_stats(c, mode, stat, log, 2, PLAN)
        return c.failures

    def test_parses_the_vmm_stats_line(self):
        text = "2026-11-24T20:37:58 info disk 3 stats: reads=40 writes=12 dsync_writes=9 " \
               "batched_durable_writes=3 flush_requests=0 fdatasyncs=1 discards=0 write_zeroes=0\n"
        self.assertEqual(mode_contract.mode_stats(text), {3: (40, 12, 12, 0, 1)})

    def test_toggled_writethrough_consistent(self):
        self.assertEqual(self.failures("writethrough", (10, 5, 3, 2, 2)), [])
        self.assertEqual(self.failures("writethrough", (10, 5, 3, 3, 3)), [])  # + the shutdown flush

    def test_toggled_writethrough_inconsistent(self):
        self.assertTrue(self.failures("writethrough", (10, 5, 5, 2, 2)))  # all dsync
        self.assertTrue(self.failures("writethrough", (10, 5, 3, 2, 1)))  # a flush not honoured
        self.assertTrue(self.failures("writethrough", (10, 5, 3, 4, 4)))  # flushes sent while WCE=0
        self.assertTrue(self.failures("writethrough", (10, 6, 3, 2, 2)))  # a write nobody acked

    def test_unsafe(self):
        self.assertEqual(self.failures("unsafe", (10, 5, 0, 4, 0)), [])
        self.assertEqual(self.failures("unsafe", (10, 5, 0, 5, 0)), [])  # + the shutdown flush
        self.assertTrue(self.failures("unsafe", (10, 5, 0, 6, 0)))
        self.assertTrue(self.failures("unsafe", (10, 5, 0, 4, 1)))  # fdatasync on unsafe
        self.assertTrue(self.failures("unsafe", (10, 5, 0, 3, 0)))  # a flush went missing

    def test_writeback_and_none(self):
        for mode in ("writeback", "none"):
            self.assertEqual(self.failures(mode, (10, 5, 0, 4, 4)), [])
            self.assertEqual(self.failures(mode, (10, 5, 0, 5, 5)), [])  # + the shutdown flush
            self.assertTrue(self.failures(mode, (10, 5, 0, 4, 0)))  # flushes not honoured
            self.assertTrue(self.failures(mode, (10, 5, 0, 4, 3)))  # one flush not honoured
            self.assertTrue(self.failures(mode, (10, 5, 1, 4, 4)))  # a dsync write

    def test_directsync(self):
        self.assertEqual(self.failures("directsync", (10, 5, 5, 0, 0)), [])
        self.assertEqual(self.failures("directsync", (10, 5, 5, 1, 1)), [])  # the shutdown flush
        self.assertTrue(self.failures("directsync", (10, 5, 4, 0, 0)))  # a write not dsync
        self.assertTrue(self.failures("directsync", (10, 5, 5, 2, 2)))  # guest flushes arrived


if __name__ == "__main__":
    unittest.main()
