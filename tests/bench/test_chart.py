#!/usr/bin/python3
"""Unit tests for bench/chart.py (scripts/bench-chart.sh): the parser on
fixture tables cut from bench/README.md (fixtures/), a rendered PNG, and the
errors for missing and malformed files. Needs python3-matplotlib."""
import os
import struct
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
import chart  # bench/, on PYTHONPATH (add_python_test)

STORAGE = os.path.join(HERE, "fixtures", "storage.txt")
DEVICE = os.path.join(HERE, "fixtures", "device.txt")
def parse_text(text):
    """chart.parse on a temporary file holding text."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "table.txt")
        with open(path, "w") as f:
            f.write(text)
        return chart.parse(path)


TESTS = ["write QD1", "write QD32", "read QD1", "read QD32", "write+flush/16 QD1"]


class ParseTest(unittest.TestCase):
    def test_storage_table(self):
        t = chart.parse(STORAGE)
        self.assertEqual(t.kind, "storage")
        self.assertEqual(t.date, "2026-11-24T20:57Z")
        self.assertEqual((t.load_before, t.load_after), ("1.88 2.53 3.00", "2.37 2.56 2.99"))
        self.assertEqual(t.tests(), TESTS)
        self.assertEqual([r.mode for r in t.rows], ["writeback"] * 5 + ["unsafe"] * 5)
        first, last = t.rows[0], t.rows[-1]
        self.assertEqual((first.test, first.iops, first.qemu_iops, first.vs_qemu),
                         ("write QD1", 81292, 75410, 1.08))
        self.assertEqual((last.test, last.iops, last.qemu_iops, last.vs_qemu),
                         ("write+flush/16 QD1", 41484, 29050, 1.43))
        self.assertEqual(t.fio[("direct=1", "read QD32")], 105703)
        self.assertEqual(len(t.fio), 5)

    def test_device_table_has_the_vs_fio_column(self):
        t = chart.parse(DEVICE)
        self.assertEqual((t.kind, t.date, t.load_before), ("device", "2026-11-24T21:45Z", "1.00 1.14 1.57"))
        self.assertEqual(len(t.rows), 10)
        r = [r for r in t.rows if r.mode == "none" and r.test == "write QD32"][0]
        self.assertEqual((r.iops, r.qemu_iops, r.vs_qemu), (80009, 80062, 1.00))

    def test_indented_table_without_peers(self):
        # As pasted into bench/README.md (indented header), run with --no-peers.
        t = parse_text("    date: 2026-11-29T18:00Z  host: x\n"
                       "| who / mode | test | IOPS | p50 (us) | p99 (us) | qemu-img IOPS | vs qemu |\n"
                       "|---|---|---|---|---|---|---|\n"
                       "| minivmm none | read QD1 | 1234 | 1.0 | 2.0 | - | - |\n")
        self.assertEqual(t.date, "2026-11-29T18:00Z")
        self.assertEqual(t.load_before, "?")
        self.assertEqual((t.rows[0].iops, t.rows[0].qemu_iops, t.rows[0].vs_qemu), (1234, None, None))

    def test_table_with_cpu_columns(self):
        # Since 2026-11-30 both programs end each row with the CPU columns.
        t = parse_text("date: 2026-11-30T03:27Z  host: x, 2 CPUs\n"
                       "| who / mode | test | IOPS | p50 (us) | p99 (us) | qemu-img IOPS | vs qemu "
                       "| vs fio | CPU us/IO | qemu-img CPU us/IO |\n"
                       "|---|---|---|---|---|---|---|---|---|---|\n"
                       "| device unsafe | write QD1 | 53337 | 20.1 | 40.3 | 32925 | 1.62x | 0.72x "
                       "| 18.6 | 28.5 |\n"
                       "| fio direct=1 | write QD1 | 29404 | 24.4 | 52.5 | - | - | - | 9.0 | - |\n")
        self.assertEqual((t.rows[0].iops, t.rows[0].qemu_iops, t.rows[0].vs_qemu), (53337, 32925, 1.62))
        self.assertEqual(t.fio[("direct=1", "write QD1")], 29404)


class RenderTest(unittest.TestCase):
    def test_renders_a_png(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "sub", "chart.png")
            chart.render([chart.parse(STORAGE), chart.parse(DEVICE)], out)
            with open(out, "rb") as f:
                data = f.read()
        self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n")
        width, height = struct.unpack(">II", data[16:24])  # IHDR
        self.assertEqual((width, height), (1700, 880))  # 3.4 in x 5 panels, 4.4 in x 2 rows, 100 dpi
        self.assertTrue(20_000 < len(data) < 2_000_000, len(data))


class ErrorTest(unittest.TestCase):
    def write(self, d, text):
        path = os.path.join(d, "bad.txt")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_malformed_row_names_file_and_line(self):
        with open(STORAGE) as f:
            lines = f.read().splitlines()
        lines[8] = lines[8].replace("470127", "47o127")  # line 9
        with tempfile.TemporaryDirectory() as d:
            path = self.write(d, "\n".join(lines))
            with self.assertRaisesRegex(chart.ChartError, r"bad\.txt:9: IOPS is not a number: '47o127'"):
                chart.parse(path)
            lines[8] = "| minivmm writeback | read QD1 | 470127 |"
            path = self.write(d, "\n".join(lines))
            with self.assertRaisesRegex(chart.ChartError, r"bad\.txt:9: 3 columns, the header has 7"):
                chart.parse(path)

    def test_no_table_and_missing_file(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(chart.ChartError, r"bad\.txt: no benchmark table"):
                chart.parse(self.write(d, "date: 2026-11-29T18:00Z\nbench: something failed\n"))
            with self.assertRaisesRegex(chart.ChartError, r"nothere\.txt: cannot read"):
                chart.parse(os.path.join(d, "nothere.txt"))

    def test_command_prints_one_line_and_fails(self):
        with tempfile.TemporaryDirectory() as d:
            header = "| who / mode | test | IOPS | p50 (us) | p99 (us) | qemu-img IOPS | vs qemu |\n"
            path = self.write(d, header + "| qemu writeback | write QD1 | 1 | 1 | 1 | 1 | 1.00x |\n")
            out = os.path.join(d, "chart.png")
            p = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "chart.py"), "-o", out, path],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 1)
            self.assertRegex(p.stderr, r"^bench-chart: .*bad\.txt:2: unexpected program 'qemu'")
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
            self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()
