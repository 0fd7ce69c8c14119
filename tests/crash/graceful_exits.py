#!/usr/bin/env python3
"""Many graceful exits in one machine: boot minivmm with five disks (one per
cache mode) and the guest agent's continuous workload, let it write for a
while, stop it with SIGTERM (or SIGKILL with --signal KILL), and repeat on the
same images; then one plain boot must still reach late init.

It reproduces the sandbox freeze of docs/nested-kvm.md (after
ten SIGTERM-ended runs of 35-40 s in one nested-KVM sandbox, the eleventh
minivmm printed nothing and the whole sandbox stopped). Run it inside the
sandbox, where the runner's heartbeat watchdog turns a freeze into a report:

  scripts/nested-kvm.sh --keep-run -- env PYTHONPATH=tests python3 tests/crash/graceful_exits.py \\
      build/vmm/minivmm ~/.cache/minivmm/guest/current/vmlinux --runs 12

Prints one line per run (boot time, exit code, how long the stop took) and
the L1 kernel's KVM state (/sys/kernel/debug/kvm entries) after each.
Exit status 1 if any run did not exit 0 (SIGTERM) within --stop-timeout.

usage: graceful_exits.py MINIVMM KERNEL [--runs N] [--seconds S] [--signal TERM|KILL]
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

from framework.cache_modes import MODES



def reader(pipe, lines, first_ack):
    for raw in iter(pipe.readline, b""):
        line = raw.decode(errors="replace").rstrip()
        lines.append(line)
        if "agent ack " in line and not first_ack.is_set():
            first_ack.set()


def debugfs_vms():
    try:
        return len([e for e in os.listdir("/sys/kernel/debug/kvm") if "-" in e])
    except OSError:
        return "n/a"


def one_run(args, images, n):
    cmd = [args.minivmm, "--kernel", args.kernel, "--memory", "128", "--no-stdin", "--cmdline",
           "console=ttyS0 panic=-1 minivmm_agent.continuous=1 minivmm_agent.multi=4 "
           f"minivmm_agent.generation={n + 1} minivmm_agent.seed={n + 1} minivmm_agent.expect_disks=5"]
    for mode, path in zip(MODES, images):
        cmd += ["--disk", f"{path},cache={mode}"]
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    console, log, first_ack = [], [], threading.Event()
    threads = [threading.Thread(target=reader, args=(p.stdout, console, first_ack), daemon=True),
               threading.Thread(target=reader, args=(p.stderr, log, threading.Event()), daemon=True)]
    for t in threads:
        t.start()
    if not first_ack.wait(args.boot_timeout):
        p.kill()
        p.wait()
        return f"no agent ack within {args.boot_timeout}s; console tail: {console[-5:]} log: {log[-5:]}"
    boot = time.monotonic() - start
    time.sleep(args.seconds)
    acks = sum("agent ack " in line for line in console)
    sig = signal.SIGTERM if args.signal == "TERM" else signal.SIGKILL
    t0 = time.monotonic()
    p.send_signal(sig)
    try:
        rc = p.wait(timeout=args.stop_timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return f"no exit within {args.stop_timeout}s of SIG{args.signal}; log tail: {log[-5:]}"
    stop = time.monotonic() - t0
    for t in threads:
        t.join(5)
    want = 0 if sig == signal.SIGTERM else -signal.SIGKILL
    print(f"run {n + 1:2d}: boot to first ack {boot:5.1f}s, {acks:4d} acks, SIG{args.signal} -> exit {rc} "
          f"in {stop:.2f}s; KVM VMs left in debugfs: {debugfs_vms()}", flush=True)
    return None if rc == want else f"exit {rc}, want {want}; log tail: {log[-5:]}"


def final_boot(args):
    p = subprocess.run([args.minivmm, "--kernel", args.kernel, "--no-stdin", "--cmdline",
                        "console=ttyS0 panic=-1 minivmm_agent.exit_status=0"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=args.boot_timeout)
    ok = p.returncode == 0 and b"late init reached" in p.stdout
    print(f"final plain boot: exit {p.returncode}, late init {'reached' if ok else 'NOT reached'}", flush=True)
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("minivmm")
    ap.add_argument("kernel")
    ap.add_argument("--runs", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=30, help="workload time after the first ack")
    ap.add_argument("--signal", choices=["TERM", "KILL"], default="TERM")
    ap.add_argument("--boot-timeout", type=float, default=240)
    ap.add_argument("--stop-timeout", type=float, default=60)
    args = ap.parse_args()
    failures = []
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        images = []
        for i, mode in enumerate(MODES):
            path = os.path.join(d, f"{mode}.img")
            with open(path, "wb") as f:
                f.truncate((16 + i) << 20)
            images.append(path)
        for n in range(args.runs):
            err = one_run(args, images, n)
            if err:
                print(f"run {n + 1:2d}: FAIL: {err}", flush=True)
                failures.append(err)
    if not final_boot(args):
        failures.append("final boot")
    print("PASS" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
