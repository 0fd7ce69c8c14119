#!/usr/bin/env python3
"""vm_stall's classifier on fabricated evidence: a vCPU stuck in guest mode
with no disk work pending is a sandbox stall; a request published and never
taken, requests that never complete, a queue that needs a reset or an I/O
loop that does not answer is a minivmm hang; anything else is unknown. And
what the harness does with each verdict (exit 125 only for a sandbox stall
inside the sandbox)."""
import contextlib
import io
import os
import tempfile
import unittest
from unittest import mock

from framework import vm_stall
from framework import vmm_log
from framework.vm_stall import MINIVMM_HANG, SANDBOX_STALL, UNKNOWN, Evidence, VcpuTime
from framework.vmm_log import Ring

TICKS = 300  # a 3 s interval at 100 ticks per second


def ring(avail=0, last=0, used=0, ready=True, needs_reset=False, answered=True, disk=0, queue=0):
    return Ring(disk, queue, ready, avail, last, used, (last - used) % 65536, needs_reset, answered)


def vcpu(guest, cpu=None, name="minivmm-vcpu0"):
    return VcpuTime(name, guest, guest if cpu is None else cpu)


def classify(vcpus, before, after):
    return vm_stall.classify(Evidence(TICKS, vcpus, before, after), 100)


class ParseTest(unittest.TestCase):
    def test_ring_line_as_minivmm_logs_it(self):
        # The line format_ring_state writes (tests/devices/virtio_blk/ring_report_test.cpp).
        text = ("[info] ring disk=2 queue=1 ready=1 avail_idx=9 last_avail=7 used_idx=5 "
                "in_flight=2 needs_reset=1 io_loop=unresponsive\n")
        self.assertEqual(vmm_log.parse_rings(text),
                         [Ring(2, 1, True, 9, 7, 5, 2, True, False)])

    def test_untaken_wraps_with_the_sixteen_bit_indices(self):
        self.assertEqual(ring(avail=1, last=65535, used=65535).untaken, 2)

    def test_stat_fields_after_a_command_name_with_spaces_and_parens(self):
        # proc(5): utime 14, stime 15, guest_time 43.
        fields = [str(n) for n in range(3, 53)]
        stat = "1234 (minivmm (x) y) " + " ".join(["R"] + fields[1:])
        self.assertEqual(vm_stall.parse_stat_times(stat), (14, 15, 43))


class ClassifyTest(unittest.TestCase):
    def test_vcpu_in_guest_mode_with_no_disk_work_is_a_sandbox_stall(self):
        idle = [ring(avail=40, last=40, used=40)]
        v = classify([vcpu(TICKS), vcpu(3, name="minivmm-vcpu1")], idle, idle)
        self.assertEqual(v.kind, SANDBOX_STALL, v)
        self.assertIn("minivmm-vcpu0 100%", str(v))
        self.assertNotIn("minivmm-vcpu1", str(v))

    def test_chain_published_and_never_taken_is_a_minivmm_hang(self):
        stuck = [ring(avail=41, last=40, used=40)]
        v = classify([vcpu(TICKS)], stuck, stuck)  # even with a vCPU spinning on it
        self.assertEqual(v.kind, MINIVMM_HANG, v)
        self.assertIn("1 chain(s) published by the guest, not taken", str(v))

    def test_chain_taken_between_the_samples_is_not_a_hang(self):
        v = classify([vcpu(0)], [ring(avail=41, last=40, used=40)], [ring(avail=41, last=41, used=41)])
        self.assertEqual(v.kind, UNKNOWN, v)

    def test_requests_in_flight_that_never_complete_are_a_minivmm_hang(self):
        stuck = [ring(avail=44, last=44, used=40)]
        v = classify([vcpu(0)], stuck, stuck)
        self.assertEqual(v.kind, MINIVMM_HANG, v)
        self.assertIn("4 request(s) in flight, none completed", str(v))

    def test_requests_in_flight_that_complete_are_not_a_hang(self):
        v = classify([vcpu(0)], [ring(avail=44, last=44, used=40)], [ring(avail=46, last=46, used=43)])
        self.assertEqual(v.kind, UNKNOWN, v)

    def test_unresponsive_io_loop_is_a_minivmm_hang(self):
        idle = [ring(avail=5, last=5, used=5, answered=False)]
        v = classify([vcpu(TICKS)], idle, idle)
        self.assertEqual(v.kind, MINIVMM_HANG, v)
        self.assertIn("I/O loop did not answer", str(v))

    def test_io_loop_that_missed_only_the_first_report_is_a_minivmm_hang(self):
        v = classify([vcpu(0)], [ring(answered=False)], [ring()])
        self.assertEqual(v.kind, MINIVMM_HANG, v)

    def test_queue_that_needs_a_reset_is_a_minivmm_hang(self):
        broken = [ring(avail=17, needs_reset=True)]
        v = classify([vcpu(TICKS)], broken, broken)
        self.assertEqual(v.kind, MINIVMM_HANG, v)
        self.assertIn("DEVICE_NEEDS_RESET", str(v))

    def test_hang_on_a_second_disk_is_found(self):
        before = [ring(disk=0), ring(avail=3, last=2, used=2, disk=1)]
        v = classify([vcpu(0)], before, list(before))
        self.assertEqual(v.kind, MINIVMM_HANG, v)
        self.assertIn("disk 1 queue 0", str(v))

    def test_idle_vcpu_and_idle_rings_are_unknown(self):
        idle = [ring(avail=40, last=40, used=40)]
        v = classify([vcpu(5, cpu=6)], idle, idle)
        self.assertEqual(v.kind, UNKNOWN, v)
        self.assertIn("no vCPU stuck in guest mode", str(v))

    def test_vcpus_stuck_together_on_one_sandbox_cpu_are_a_stall(self):
        idle = [ring(avail=3, last=3, used=3)]
        v = classify([vcpu(140, cpu=150), vcpu(138, cpu=148, name="minivmm-vcpu1")], idle, idle)
        self.assertEqual(v.kind, SANDBOX_STALL, v)
        self.assertIn("minivmm-vcpu1", str(v))

    def test_vcpu_mostly_halted_is_not_a_stall(self):
        # What little it ran was guest code, but it was off the CPU (halted).
        v = classify([vcpu(20, cpu=21)], [], [])
        self.assertEqual(v.kind, UNKNOWN, v)

    def test_vcpu_busy_outside_guest_mode_is_not_a_stall(self):
        # On a CPU the whole time, but in minivmm or the host kernel (exits).
        v = classify([vcpu(100, cpu=TICKS)], [], [])
        self.assertEqual(v.kind, UNKNOWN, v)

    def test_without_a_ring_report_a_stuck_vcpu_is_not_called_a_stall(self):
        v = classify([vcpu(TICKS)], None, None)
        self.assertEqual(v.kind, UNKNOWN, v)
        self.assertIn("no ring report", str(v))

    def test_stall_without_disks(self):
        v = classify([vcpu(TICKS - 10)], [], [])
        self.assertEqual(v.kind, SANDBOX_STALL, v)


class FakeProc:
    pid = 4242

    def __init__(self):
        self.killed = False

    def poll(self):
        return 0 if self.killed else None

    def kill(self):
        self.killed = True

    def wait(self, timeout=None):
        return -9


class AfterTimeoutTest(unittest.TestCase):
    def run_after_timeout(self, verdict, env):
        proc = FakeProc()
        with mock.patch.object(vm_stall, "diagnose", return_value=verdict), \
                mock.patch.dict(os.environ, env, clear=False), \
                contextlib.redirect_stderr(io.StringIO()):
            try:
                return proc, vm_stall.after_timeout(proc, lambda: "", "boot"), None
            except SystemExit as e:
                return proc, None, e.code

    def test_sandbox_stall_in_the_sandbox_exits_125_and_tells_the_runner(self):
        with tempfile.TemporaryDirectory() as run_dir:
            verdict = vm_stall.Verdict(SANDBOX_STALL, ["minivmm-vcpu0 100% of 3.0 s in guest mode"])
            proc, got, code = self.run_after_timeout(
                verdict, {"MINIVMM_IN_NESTED_SANDBOX": "1", "MINIVMM_NESTED_RUN_DIR": run_dir})
            self.assertEqual(code, 125)
            self.assertTrue(proc.killed)
            with open(os.path.join(run_dir, "infra_error")) as f:
                self.assertIn("minivmm-vcpu0 100%", f.read())

    def test_sandbox_stall_outside_the_sandbox_is_reported_not_retried(self):
        verdict = vm_stall.Verdict(SANDBOX_STALL, ["x"])
        proc, got, code = self.run_after_timeout(verdict, {"MINIVMM_IN_NESTED_SANDBOX": "0"})
        self.assertIsNone(code)
        self.assertIs(got, verdict)
        self.assertFalse(proc.killed)

    def test_minivmm_hang_in_the_sandbox_is_a_test_failure(self):
        with tempfile.TemporaryDirectory() as run_dir:
            verdict = vm_stall.Verdict(MINIVMM_HANG, ["x"])
            proc, got, code = self.run_after_timeout(
                verdict, {"MINIVMM_IN_NESTED_SANDBOX": "1", "MINIVMM_NESTED_RUN_DIR": run_dir})
            self.assertIsNone(code)
            self.assertIs(got, verdict)
            self.assertFalse(os.path.exists(os.path.join(run_dir, "infra_error")))

    def test_exited_minivmm_is_not_diagnosed(self):
        proc = FakeProc()
        proc.killed = True
        with mock.patch.object(vm_stall, "diagnose") as diagnose:
            self.assertIsNone(vm_stall.after_timeout(proc, lambda: "", "boot"))
            diagnose.assert_not_called()


if __name__ == "__main__":
    unittest.main()
