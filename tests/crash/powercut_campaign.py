#!/usr/bin/env python3
"""Power-cut campaign: cut the power of the machine under minivmm, check each cache mode's promise.

minivmm runs inside the nested-KVM sandbox (scripts/nested-kvm.sh, a Linux
machine that is a QEMU process on this host) with five disks, one per cache
mode, on images in the sandbox's /var/tmp: an ext4 on a scratch disk image
that is kept across boots (--scratch). The guest agent's continuous workload
(multi-segment writes, a flush every few records, every disk in turn) runs,
and its `agent ...` lines are streamed out live (powercut_inner.py copies
them to its stdout, the runner streams that). At a seeded moment, uniform in
[0, --window] s after the first `agent ack` line arrives here, this program
SIGKILLs the runner (never before --min-acks ack lines arrived): QEMU dies with it at once (PR_SET_PDEATHSIG), so the
sandbox's page cache is gone and only what QEMU had written to the scratch
disk file survives -- a power cut. The next boot of the sandbox on the same
scratch disk (ext4 journal replay at mount) checks every image against what
this side saw the agent report before the cut (powercut_check.py):

  writethrough, directsync  every acked record present and intact
  writeback, none           every record acked before a completed flush
  unsafe                    nothing promised: the acked records lost are counted
  every mode                no torn or foreign block; the image keeps its size

then snapshots the images and starts the next round's workload on them
(that boot must see all five disks: the reopen check). After the last cut
one more boot checks it and boots minivmm plainly on the images (exit 0,
every disk probed, images unchanged). So N cuts take N+1 sandbox boots.

--bug SPEC runs minivmm with the test-only LD_PRELOAD shim
(powercut_bug_shim.cpp, --shim PATH) that breaks one mode on purpose:
`drop-dsync:writethrough` (writes lose RWF_DSYNC) or `skip-flush:writeback`
(fdatasync does nothing); --bug-cuts K limits it to the last K cuts. Cuts of
the real minivmm must show no violation; the broken minivmm's cuts must show
violations in exactly the modes --expect-violations names, and the two are
tabled apart. --require-unsafe-loss fails unless unsafe lost acknowledged
records with the real minivmm (else the cut did not reach the page cache). The seed fixes the schedule (cut moments, agent seeds, image
noise), not the instruction a cut lands on.

What the sandbox cannot show: QEMU runs the scratch disk with cache=unsafe,
so what QEMU wrote survives and the disk has no volatile cache of its own;
O_DIRECT writes (none, directsync) therefore survive even without their
fdatasync. The cut drops the sandbox's page cache, not a disk cache.

usage: powercut_campaign.py MINIVMM KERNEL [--cuts N] [--seed S] [--window S]
         [--flush-every K] [--span N] [--multi N] [--bug SPEC --shim SO [--bug-cuts K]]
         [--expect-violations MODE,...] [--require-unsafe-loss] [--workdir DIR] [--keep]
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
from framework import agent_log
from framework import campaign
from framework import kill_vm
from framework import powercut_check
from framework.cache_modes import MODES, WRITE_BACK
from framework.powercut_totals import ModeTotals, account, risk_before_cut

NESTED = os.path.join(ROOT, "scripts", "nested-kvm.sh")
INNER = os.path.join(HERE, "powercut_inner.py")
IMAGES_DIR = "/var/tmp/minivmm-powercut"  # inside the sandbox: on the scratch ext4


class Reader(threading.Thread):
    """The runner's stdout to EOF: complete lines with arrival times (a cut-off last line is dropped)."""

    def __init__(self, pipe, min_acks: int = 0):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.min_acks = max(1, min_acks)
        self.lines: list[tuple[float, str]] = []
        self.acks = 0
        self.first_ack: float | None = None
        self.enough_acks: float | None = None  # when min_acks ack lines had come
        self.event = threading.Event()

    def run(self):
        kill_vm.read_lines(self.pipe, self._line)
        self.event.set()

    def _line(self, line: str, now: float) -> None:
        self.lines.append((now, line))
        if "agent ack " in line:
            self.acks += 1
            if self.first_ack is None:
                self.first_ack = now
            if self.acks == self.min_acks:
                self.enough_acks = now
                self.event.set()


def pc_lines(lines, kind):
    return [json.loads(text.split(" ", 2)[2]) for _, text in lines if text.startswith(f"PC {kind} ")]


def qemu_pids(scratch: str) -> list[int]:
    """QEMU processes using our scratch disk (the runner's child, in its own session)."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if f"file={scratch},".encode() in f.read():
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def exited(pid: int) -> bool:
    """Gone or a zombie: a zombie holds no files (so no lock on the scratch disk)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def wait_qemu_gone(scratch: str, known: list[int], timeout: float = 60) -> None:
    """Until every QEMU on the scratch disk has exited. `known` were found while they ran: a
    dying QEMU's cmdline reads empty (its main thread released its memory) while other threads
    still hold the disk's lock, so matching the cmdline alone is not enough."""
    deadline = time.monotonic() + timeout
    pids = set(known) | set(qemu_pids(scratch))
    while time.monotonic() < deadline:
        pids = {p for p in pids | set(qemu_pids(scratch)) if not exited(p)}
        if not pids:
            return
        time.sleep(0.05)
    for pid in pids:  # PR_SET_PDEATHSIG should have done this long ago
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def cache_root() -> str:
    return os.environ.get("MINIVMM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "minivmm")


def cache_runs_dir() -> str:
    return os.path.join(cache_root(), "nested", "runs")


def remove_run_dirs(pid: int) -> None:
    """The run directory a SIGKILLed runner could not clean up (run-<pid>-*)."""
    runs = cache_runs_dir()
    try:
        for name in os.listdir(runs):
            if name.startswith(f"run-{pid}-"):
                shutil.rmtree(os.path.join(runs, name), ignore_errors=True)
    except OSError:
        pass


def save_write_logs(pid: int, dest: str) -> list[str]:
    """The cut run's write logs (powercut_inner.py put them in the run directory, which the sandbox
    writes through to the host), moved out before the run directory goes; in image order."""
    os.makedirs(dest, exist_ok=True)
    runs = cache_runs_dir()
    for name in os.listdir(runs):
        if name.startswith(f"run-{pid}-"):
            for f in os.listdir(os.path.join(runs, name)):
                if f.endswith(".wlog"):
                    shutil.move(os.path.join(runs, name, f), os.path.join(dest, f))
    return [os.path.join(dest, f"{i}-{mode}.wlog") for i, mode in enumerate(MODES)]


@dataclasses.dataclass
class Boot:
    lines: list[tuple[float, str]]
    rc: int | None          # runner exit status; None when we cut it
    cut: bool
    start: float
    first_ack: float | None
    cut_at: float | None
    stderr_path: str
    runner_pid: int
    write_logs: list[str] | None = None  # the cut's write logs, saved from the run directory


def boot(args, n: int, spec: dict, cut_after: float | None) -> Boot:
    """boot_once, again (up to 3 times) when the sandbox never got to run anything: QEMU could
    not lock the scratch disk, the sandbox kernel froze before its init started (no heartbeat
    at all: TCG soft lockups, docs/nested-kvm.md), or it froze before the guest printed a
    line (seen with a one-CPU sandbox: stuck in the guest's APIC timer calibration, before any
    disk was probed). In each case the guest wrote nothing to the images, and the boot's own
    steps (setup, check, snapshot) are repeatable."""
    for attempt in range(3):
        b = boot_once(args, n, spec, cut_after)
        tail = stderr_tail(b.stderr_path, 50)
        if b.rc != 125:
            return b
        if "Is another process using the image" in tail:
            why = "the scratch disk was still locked by the previous QEMU"
        elif "froze: no heartbeat" in tail and "(during boot)" in tail:
            why = "the sandbox kernel froze before its init ran"
        elif "froze: no heartbeat" in tail and all(line.startswith("PC ") for _, line in b.lines):
            why = "the sandbox froze before the guest printed anything"
        else:
            return b
        print(f"boot {n}: {why}; retrying (nothing ran)", flush=True)
        remove_run_dirs(b.runner_pid)  # the runner kept it for inspection; nothing to see
        time.sleep(5)
    return b


def boot_once(args, n: int, spec: dict, cut_after: float | None) -> Boot:
    """One sandbox boot running powercut_inner.py on `spec`; cut `cut_after` s after the first ack."""
    spec_path = os.path.join(args.workdir_used, f"round-{n:03d}.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    err_path = os.path.join(args.workdir_used, f"round-{n:03d}.stderr")
    cmd = [NESTED, "--scratch", args.scratch, "--scratch-gib", "2", "--timeout", str(args.boot_timeout),
           "--", sys.executable, INNER, spec_path]
    start = time.monotonic()
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                bufsize=0, cwd=ROOT)
    reader = Reader(proc.stdout, args.min_acks)
    reader.start()
    cut, cut_at, qemu = False, None, []
    try:
        if cut_after is not None:
            reader.event.wait(args.boot_timeout)
            if reader.enough_acks is not None:
                deadline = max(reader.first_ack + cut_after, reader.enough_acks)
                while time.monotonic() < deadline and proc.poll() is None:
                    time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
                if proc.poll() is None:
                    qemu = qemu_pids(args.scratch)
                    os.kill(proc.pid, signal.SIGKILL)  # the power cut: QEMU dies with the runner
                    cut, cut_at = True, time.monotonic()
        rc = proc.wait(None if cut else args.boot_timeout + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(60)
        wait_qemu_gone(args.scratch, qemu)
        logs = None
        if cut:
            if spec.get("workload", {}).get("write_log"):
                logs = save_write_logs(proc.pid, os.path.join(args.workdir_used, f"round-{n:03d}-wlog"))
            remove_run_dirs(proc.pid)
    with open(os.path.join(args.workdir_used, f"round-{n:03d}.stdout"), "w") as f:
        f.write("".join(f"{t - start:9.3f} {line}\n" for t, line in reader.lines))
    return Boot(reader.lines, None if cut else rc, cut, start, reader.first_ack, cut_at, err_path, proc.pid,
                logs)


def stderr_tail(path: str, n: int = 8) -> str:
    try:
        with open(path, errors="replace") as f:
            return "\n".join("     | " + line for line in f.read().splitlines()[-n:])
    except OSError:
        return ""


def observe(b: Boot, round_no: int, spec_w: dict, failures: list[str]) -> dict | None:
    """What the host saw the agent report before the cut: the next boot's check input."""
    log = agent_log.parse("\n".join(line for _, line in b.lines))
    if log.errors:
        failures.append(f"cut {round_no}: agent errors: " + "; ".join(log.errors[:3]))
    mapping, problems = campaign.guest_disks(log)
    failures += [f"cut {round_no}: reopen: {p}" for p in problems]
    if problems:
        return None
    return {"round": round_no, "generation": spec_w["generation"], "agent_seed": spec_w["agent_seed"],
            "span": spec_w["span"], "multi": spec_w["multi"],
            "disk_of_image": [mapping[i] for i in range(len(MODES))],
            "lbs": {str(d): info.lbs for d, info in log.disks.items()},
            "acks": [[a.disk, a.seq, a.sector] for a in log.acks],
            "flushes": [[d, s] for d, s in log.flushes],
            "risk": risk_before_cut(b.lines, [mapping[i] for i in range(len(MODES))]),
            "write_logs": b.write_logs}


def print_table(args, phase: str, totals: list[ModeTotals], planned: int, elapsed: float) -> None:
    date = datetime.date.today().isoformat()
    what = f"INJECTED BUG {args.bug}" if phase == "bug" else "real minivmm"
    print(f"\npower-cut campaign, seed {args.seed}, {date}, {what}: {totals[0].cuts} of {planned} cuts checked, "
          f"cut uniform in [0, {args.window:g}] s after the first ack, flush every {args.flush_every} records, "
          f"span {args.span}, multi={args.multi}, {elapsed / 60:.1f} min in all")
    print("| mode | promise | cuts | records acknowledged | acked before a completed flush | promised (sectors) "
          "| verified | lost (allowed) | of those flushed | landed unacked | violations |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode, t in zip(MODES, totals):
        promise = {"acked": "every ack", "flushed": "acks before a flush", "nothing": "nothing"}[
            powercut_check.PROMISE[mode]]
        lost = str(t.lost) if mode in WRITE_BACK else (f"{t.lost} (not allowed)" if t.lost else "0")
        print(f"| {mode} | {promise} | {t.cuts} | {t.acked} | {t.flushed} | {t.promised} | {t.verified} "
              f"| {lost} | {t.lost_flushed} | {t.landed_unacked} | {t.violations} |")
    print("\nminivmm's durability window (SIGUSR1 every 0.5 s) against what was lost; bound = reported at "
          "risk in the last report before the cut + acked after it:")
    print("| mode | cuts with a report | lost (bytes) | reported at risk (bytes) | acked after the report "
          "(bytes) | lost > bound |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for mode, t in zip(MODES, totals):
        print(f"| {mode} | {t.risk_cuts} | {t.lost_bytes} | {t.reported_bytes} | {t.acked_after_bytes} "
              f"| {t.risk_violations} |")
    if any(t.wlog_cuts for t in totals):
        print("\nThe write-log simulator (powerloss_check.py) against the cut, per sector written in the cut's "
              "run (its newest host write: durable or at risk at the end of the log; lost = not in the image "
              "after the cut):")
        print("| mode | cuts with logs | sectors written | at risk (simulator) | lost in the cut | lost and at risk "
              "| lost but durable (disagree) | at risk, survived |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for mode, t in zip(MODES, totals):
            print(f"| {mode} | {t.wlog_cuts} | {t.wlog_sectors} | {t.wlog_at_risk} | {t.wlog_lost} "
                  f"| {t.wlog_lost_at_risk} | {t.wlog_lost_durable} | {t.wlog_survived_at_risk} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("minivmm")
    ap.add_argument("kernel")
    ap.add_argument("--cuts", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--window", type=float, default=8.0, help="cut uniform in [0, W] s after the first ack")
    ap.add_argument("--min-acks", type=int, default=0,
                    help="never cut before this many ack lines arrived (all disks together)")
    ap.add_argument("--flush-every", type=int, default=8, help="agent flush_every (records)")
    ap.add_argument("--span", type=int, default=64, help="agent span: record slots per disk")
    ap.add_argument("--multi", type=int, default=4, help="agent multi: records per write request")
    ap.add_argument("--bug", default="", help="injected bug for the shim, e.g. drop-dsync:writethrough")
    ap.add_argument("--shim", default="", help="the test-only shim library (powercut_bug_shim)")
    ap.add_argument("--bug-cuts", type=int, default=None,
                    help="with --bug: only the last K cuts run the broken minivmm (default: all)")
    ap.add_argument("--expect-violations", default=None,
                    help="comma-separated modes that must show violations, and no other (default: none)")
    ap.add_argument("--require-unsafe-loss", action="store_true",
                    help="fail unless unsafe lost acknowledged records (the cut reached the page cache)")
    ap.add_argument("--write-log", action="store_true",
                    help="log every disk's host writes (write_log=) into the sandbox's run directory, which "
                         "survives the cut, and compare what each cut lost with the write-log simulator's "
                         "at-risk set")
    ap.add_argument("--boot-timeout", type=float, default=900, help="per sandbox boot")
    ap.add_argument("--workdir", default=None,
                    help="where the scratch disk, specs and logs go (not /var/tmp: the sandbox hides it); "
                         "default $MINIVMM_CACHE/powercut")
    ap.add_argument("--keep", action="store_true", help="keep the work directory even when all passed")
    args = ap.parse_args()
    if not 1 <= args.multi <= 16 or args.span % args.multi:
        print(f"FAIL: --multi {args.multi} must be in [1, 16] and divide --span {args.span}")
        return 1
    if args.bug and not os.path.exists(args.shim):
        print(f"FAIL: --bug needs --shim, the powercut_bug_shim library ({args.shim!r} not found)")
        return 1
    for path, what in [(args.minivmm, "minivmm binary"), (args.kernel, "guest kernel (scripts/build-guest.sh)")]:
        if not os.path.exists(path):
            print(f"FAIL: {what} {path} not found")
            return 1
    base = os.path.realpath(args.workdir or os.path.join(cache_root(), "powercut"))
    os.makedirs(base, exist_ok=True)
    args.workdir_used = tempfile.mkdtemp(prefix=f"seed{args.seed}-", dir=base)
    args.scratch = os.path.join(args.workdir_used, "scratch.img")
    # A copy: a rebuild of the tree cannot replace the binary mid-campaign.
    minivmm = os.path.join(args.workdir_used, "minivmm")
    shutil.copy2(args.minivmm, minivmm)
    shim = ""
    bug_cuts = (args.cuts if args.bug_cuts is None else min(args.bug_cuts, args.cuts)) if args.bug else 0
    if args.bug:
        shim = os.path.join(args.workdir_used, "powercut_bug_shim.so")
        shutil.copy2(args.shim, shim)

    rng = random.Random(args.seed)
    schedule = [(rng.uniform(0, args.window), rng.randrange(1, 1 << 31)) for _ in range(args.cuts)]
    print(f"power-cut campaign: seed {args.seed}, {args.cuts} cuts, multi={args.multi}, "
          f"flush every {args.flush_every}{', bug ' + args.bug if args.bug else ''}; work dir {args.workdir_used}",
          flush=True)
    # Cuts of the real minivmm and of the broken one are counted apart.
    totals = {"real": [ModeTotals() for _ in MODES], "bug": [ModeTotals() for _ in MODES]}
    failures: list[str] = []
    details: list[str] = []
    bad_modes: dict[str, set[str]] = {"real": set(), "bug": set()}
    started = time.monotonic()
    prev = None  # the previous cut's observations: this boot checks them
    final = "not run"
    for n in range(1, args.cuts + 2):
        last = n == args.cuts + 1
        spec = {"minivmm": minivmm, "kernel": os.path.abspath(args.kernel), "images_dir": IMAGES_DIR,
                "image_seed": args.seed, "setup": n == 1, "check": prev, "final": last}
        if not last:
            offset, agent_seed = schedule[n - 1]
            broken = n > args.cuts - bug_cuts
            spec["workload"] = {"round": n, "generation": n, "agent_seed": agent_seed,
                                "flush_every": args.flush_every, "span": args.span, "multi": args.multi,
                                "bug": args.bug if broken else "", "shim": shim, "max_s": args.boot_timeout,
                                "write_log": args.write_log}
        b = boot(args, n, spec, None if last else offset)
        checks = pc_lines(b.lines, "check")
        line = []
        if prev is not None:
            if checks:
                ph = prev["phase"]
                line.append(f"check of cut {prev['round']}{' (bug)' if ph == 'bug' else ''}: acked/flushed/lost "
                            + account(checks[0], totals[ph], bad_modes[ph], details, prev.get("risk")))
            else:
                failures.append(f"boot {n}: no check result for cut {prev['round']} (runner exit {b.rc})")
        prev = None
        if not last:
            if not b.cut:
                failures.append(f"boot {n}: the workload never got to the cut (runner exit {b.rc}, "
                                f"{'no ack line' if b.first_ack is None else 'ended early'})\n{stderr_tail(b.stderr_path)}")
            else:
                prev = observe(b, n, spec["workload"], failures)
                if prev is not None:
                    prev["phase"] = "bug" if spec["workload"]["bug"] else "real"
            boot_s = f"{b.first_ack - b.start:.1f}" if b.first_ack else "-"
            cut_s = f"{b.cut_at - b.first_ack:.2f}" if b.cut_at and b.first_ack else "-"
            acks = sum(1 for _, ln in b.lines if "agent ack " in ln)
            line.insert(0, f"boot {n:3d}/{args.cuts + 1}{' (bug)' if spec['workload']['bug'] else ''}: "
                           f"first ack {boot_s} s, cut {cut_s} s after it "
                           f"(planned {offset:.2f}), {acks} ack lines seen")
        else:
            fin = pc_lines(b.lines, "final")
            if not fin or b.rc != 0:
                final = "FAILED"
                failures.append(f"final boot: no result (runner exit {b.rc})\n{stderr_tail(b.stderr_path)}")
            else:
                f = fin[0]
                want = {chr(97 + i): campaign.image_bytes(i) // 512 for i in range(len(MODES))}
                ok = f["rc"] == 0 and f["probed"] == want and all(f["unchanged"])
                final = (f"exit {f['rc']}, {len(f['probed'])} disks probed, images "
                         f"{'unchanged' if all(f['unchanged']) else 'CHANGED'}, {f['seconds']} s")
                if not ok:
                    failures.append(f"final boot: {final}; probed {f['probed']}, expected {want}; {f['log_tail']}")
                    final += " FAILED"
            line.insert(0, f"boot {n:3d}/{args.cuts + 1} (last): final plain boot {final}")
        print(";  ".join(line), flush=True)
    elapsed = time.monotonic() - started
    for phase, planned in (("real", args.cuts - bug_cuts), ("bug", bug_cuts)):
        if planned:
            print_table(args, phase, totals[phase], planned, elapsed)
    print(f"reopen: every boot after a cut saw all 5 disks unless listed below; final plain boot "
          f"(real minivmm): {final}")
    print(f"other failures: {len(failures)}")
    for d in details[:40]:
        print("  violation:", d)
    for f in failures:
        print("FAIL:", f)

    ok = not failures
    expected = set(filter(None, (args.expect_violations or "").split(",")))
    for phase, planned, want in (("real", args.cuts - bug_cuts, set()), ("bug", bug_cuts, expected)):
        if planned and totals[phase][0].cuts == 0:
            ok = False
            print(f"FAIL: no cut of the {phase} minivmm was checked")
        if bad_modes[phase] != want:
            ok = False
            print(f"FAIL: {phase} minivmm: violations in {sorted(bad_modes[phase]) or 'no mode'}, "
                  f"expected in {sorted(want) or 'no mode'}")
    unsafe_lost = totals["real"][MODES.index("unsafe")].lost
    if args.cuts > bug_cuts and totals["real"][0].cuts and totals["real"][0].risk_cuts == 0:
        ok = False
        print("FAIL: no cut had a durability report from minivmm before it (SIGUSR1 reports missing)")
    if args.require_unsafe_loss and unsafe_lost == 0:
        ok = False
        print("FAIL: unsafe lost no acknowledged record with the real minivmm: the cut did not reach "
              "the sandbox's page cache")
    if ok:
        what = ("every promise kept, no torn or foreign block, every image reopened"
                if args.cuts > bug_cuts else "")
        if bug_cuts:
            what += ("; " if what else "") + (f"the injected bug ({args.bug}) caused violations exactly in "
                                              f"{', '.join(sorted(expected)) or 'no mode'}")
        print(f"PASS: {what}" + (f"; unsafe lost {unsafe_lost} acknowledged records" if unsafe_lost else ""))
        if not args.keep:
            shutil.rmtree(args.workdir_used, ignore_errors=True)
        else:
            print(f"kept {args.workdir_used}")
    else:
        print(f"work directory kept: {args.workdir_used}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
