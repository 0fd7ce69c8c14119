#!/usr/bin/env python3
"""bench/vs_qemu.py's parsers and table on synthetic input, and its Boot console on stand-in
processes (no VM, no QEMU)."""
import datetime
import os
import re
import tempfile
import time
import unittest

import vs_qemu  # bench/, on PYTHONPATH (add_python_test)

SMAPS = """\
55d0c0a00000-55d0c0a8f000 r-xp 00000000 00:1f 1234                       /usr/bin/qemu-system-x86_64
Size:                572 kB
Rss:                 500 kB
Pss:                 500 kB
7f0000000000-7f0020000000 rw-p 00000000 00:00 0 
Size:             524288 kB
Rss:              131072 kB
Pss:              131072 kB
VmFlags: rd wr mr mw me ac sd hg dd
7f0020000000-7f0020001000 ---p 00000000 00:00 0 
Size:                  4 kB
Rss:                   0 kB
7f0030000000-7f0030800000 rw-p 00000000 00:00 0 
Size:               8192 kB
Rss:                1024 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
Rss:                  16 kB
"""


def terse(name, err=0, read_iops=0.0, write_iops=0.0):
    f = ["0"] * 130
    f[0], f[1], f[2], f[3], f[4] = "3", "fio-3.33", name, "0", str(err)
    f[7], f[48] = str(read_iops), str(write_iops)
    return ";".join(f)


class Parsers(unittest.TestCase):
    def test_smaps_guest_mapping_is_the_anonymous_one_of_guest_size(self):
        total, guest = vs_qemu.parse_smaps(SMAPS, 512 << 20)
        self.assertEqual(total, 500 + 131072 + 0 + 1024 + 16)
        self.assertEqual(guest, 131072)

    def test_smaps_no_guest_mapping(self):
        total, guest = vs_qemu.parse_smaps(SMAPS, 256 << 20)
        self.assertEqual(guest, 0)
        self.assertEqual(total, 132612)

    def test_smaps_file_mapping_of_guest_size_does_not_count(self):
        text = "7f0000000000-7f0020000000 rw-s 00000000 00:1f 99 /dev/shm/ram\nSize: 524288 kB\nRss: 10 kB\n"
        self.assertEqual(vs_qemu.parse_smaps(text, 512 << 20), (10, 0))

    def test_fio_terse(self):
        console = "\n".join([
            "root@minivmm:~# for m in writeback; do ... | sed 's/^/VSQ /'; done; echo VSQ-$((6*7))-DONE",
            "VSQ " + terse("writeback-write", write_iops=1234.5),
            "VSQ " + terse("writeback-read", read_iops=999),
            "VSQ " + terse("direct-sync-flush", err=5, write_iops=7),
            "VSQ 3;fio-3.33;short",
            "VSQ fio: some message",
        ])
        got = vs_qemu.parse_fio_terse(console)
        self.assertEqual(got[("writeback", "write")], (0, 0.0, 1234.5))
        self.assertEqual(got[("writeback", "read")], (0, 999.0, 0.0))
        self.assertEqual(got[("direct-sync", "flush")], (5, 0.0, 7.0))
        self.assertEqual(len(got), 3)

    def test_minivmm_first_run(self):
        log = ("2026-11-29T18:30:00.100 info minivmm starting\n"
               "2026-11-29T18:30:01.250 info first KVM_RUN 1150.20 ms after start\n")
        utc = datetime.timezone.utc
        t = vs_qemu.parse_minivmm_first_run(log, tz=utc)
        want = datetime.datetime(2026, 11, 29, 18, 30, 1, 250000, tzinfo=utc).timestamp()
        self.assertAlmostEqual(t, want, places=3)
        self.assertIsNone(vs_qemu.parse_minivmm_first_run("nothing here\n"))

    def test_qemu_first_run_skips_other_vcpu_ioctls(self):
        trace = ("4242@1795976695.063117:kvm_vcpu_ioctl cpu_index 0, type 0xc008ae67, arg 0x7ffc\n"
                 "4242@1795976695.100000:kvm_vcpu_ioctl cpu_index 1, type 0x4090ae82, arg 0x7ffc\n"
                 "4243@1795976695.250001:kvm_vcpu_ioctl cpu_index 0, type 0xae80, arg (nil)\n"
                 "4243@1795976695.300000:kvm_vcpu_ioctl cpu_index 1, type 0xae80, arg (nil)\n")
        self.assertAlmostEqual(vs_qemu.parse_qemu_first_run(trace), 1795976695.250001, places=6)
        self.assertIsNone(vs_qemu.parse_qemu_first_run(trace.splitlines()[0]))

    def test_table_medians_ratio_and_missing_samples(self):
        rows = [("t (ms)", 0, [1, 2, 3, 4, 5], [2, 4, 6, 8, 10], "< 125 ms"),
                ("iops", 0, [10, None, 30, 40, 50], [10, 10, 10, 10, 10], ""),
                ("none", 1, [None] * 5, [1] * 5, "")]
        text = vs_qemu.table(rows, 5)
        lines = text.splitlines()
        self.assertEqual(lines[2], "| t (ms) | 3 | 6 | 0.50 | < 125 ms |")
        self.assertEqual(lines[3], "| iops (n=4/5) | 35 | 10 | 3.50 |  |")
        self.assertEqual(lines[4], "| none (n=0/5) | n/a | 1.0 | n/a |  |")

    def test_workload_line_names_every_mode_and_job(self):
        line = vs_qemu.guest_workload(2, 64)
        self.assertTrue(line.endswith("\n") and line.count("\n") == 1)
        for mode in vs_qemu.MODES:
            self.assertIn(mode, line)
        for job, _ in vs_qemu.JOBS:
            self.assertIn(f"--name=$m-{job}", line)
        self.assertIn("--fdatasync=16", line)
        self.assertNotRegex(line, vs_qemu.DONE.pattern.decode().replace("\\n", "(?m)^"))


class BootConsole(unittest.TestCase):
    """The console side of Boot, with shell commands standing in for a VMM."""

    def test_console_is_on_disk_before_the_boot_ends(self):
        with tempfile.TemporaryDirectory() as d:
            console = os.path.join(d, "c.console")
            boot = vs_qemu.Boot(["sh", "-c", "echo early-line; exec sleep 30"], os.path.join(d, "log"), console)
            try:
                boot.wait_for(re.compile(rb"early-line"), 10)
                def on_disk():
                    with open(console, "rb") as f:
                        return f.read()
                deadline = time.monotonic() + 5
                while b"early-line" not in on_disk() and time.monotonic() < deadline:
                    time.sleep(0.05)
                self.assertIn(b"early-line", on_disk())
            finally:
                boot.proc.kill()
                boot.finish(timeout=1)

    def test_typing_to_a_vmm_that_reads_nothing_gives_up_at_the_deadline(self):
        with tempfile.TemporaryDirectory() as d:
            boot = vs_qemu.Boot(["sleep", "30"], os.path.join(d, "log"))
            try:
                start = time.monotonic()
                # More than a pty's input buffer holds: without a deadline this blocks forever.
                with self.assertRaisesRegex(RuntimeError, "read no input for 2s"):
                    boot.type("x" * (1 << 20), timeout=2)
                self.assertLess(time.monotonic() - start, 10)
            finally:
                boot.proc.kill()
                rc, _ = boot.finish(timeout=1)
            self.assertIsNotNone(rc)


if __name__ == "__main__":
    unittest.main()
