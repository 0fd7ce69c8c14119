#!/usr/bin/env python3
"""Kill campaign: SIGKILL minivmm mid-workload, check every image.

One VM, five virtio-blk disks, one per cache mode (distinct image sizes tell
them apart in the guest). Each round boots the guest agent's continuous plan
(guest/agent: write a self-describing record, flush every few writes, next
disk, forever) with a fresh generation number on the SAME images, and
SIGKILLs minivmm at a seeded random moment, uniform in [0, window] seconds
after the first `agent ack` line. Before each boot the images are copied
(the snapshot), so "previous content" is known exactly. After the kill every
image must keep the process-kill promise (kill_check.py; cache-modes.md
"What survives what"):

  - every record the agent reported acked is present and intact (or a later
    record the agent issued for the same sector replaced it);
  - every other block holds its previous content or a complete, valid record
    the agent issued in this round for that block (no torn, stale or foreign
    data; records are one 512-byte logical block);
  - the image keeps its size, and nothing changes it after minivmm is dead.

Reopen: each round's boot must see all five disks (capacity, block size)
from the images the previous kill left, and after the last kill a plain boot
(no plan, exit_status=0) must probe all five and exit 0 without changing them.

The schedule (kill moments, agent seeds) is a function of --seed; the exact
instruction a kill lands on is not (host timing), so a seed repeats the
campaign, not every byte. Prints one line per round and a table per mode:
kills, records acknowledged, verified, superseded, landed unacked, kills
mid-write / mid-flush, violations. Exit status 1 on any violation.

--multi N (agent multi=N) makes every write bio carry N records for N
contiguous sectors, each in its own page: N data descriptors in one
virtio-blk request, so kills land inside multi-segment requests. Each record
may land or not on its own; each changed block must still be a complete
record. --multi 1 (default): one single-segment bio per record.

usage: kill_campaign.py MINIVMM KERNEL [--kills N] [--seed S] [--window S]
                        [--flush-every K] [--span N] [--multi N] [--workdir DIR] [--keep]
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import random
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from framework import agent_log
from framework.campaign import MODES, PROBED, START_SECTOR, guest_disks, image_bytes, in_flight, make_images
from framework import kill_check
from framework import kill_vm
from framework import records


@dataclasses.dataclass
class ModeTotals:
    kills: int = 0
    acked: int = 0
    verified: int = 0
    superseded: int = 0
    landed_unacked: int = 0
    mid_write: int = 0
    mid_flush: int = 0
    violations: list[str] = dataclasses.field(default_factory=list)


def save_evidence(workdir: str, round_no: int, run: kill_vm.Run, snaps=None, paths=None) -> str:
    where = os.path.join(workdir, f"round-{round_no:03d}")
    os.makedirs(where, exist_ok=True)
    kill_vm.write_file(os.path.join(where, "console.log"), "\n".join(run.console) + "\n" + run.cut_line)
    kill_vm.write_file(os.path.join(where, "minivmm.log"), run.vmm_log)
    for i, path in enumerate(paths or []):
        kill_vm.write_file(os.path.join(where, f"{i}-{MODES[i]}.snapshot"), snaps[i])
        shutil.copyfile(path, os.path.join(where, f"{i}-{MODES[i]}.after-kill"))
    return where


def kill_round(args, round_no: int, generation: int, offset: float, agent_seed: int,
               paths: list[str], totals: list[ModeTotals], failures: list[str]) -> list[bytes]:
    """One boot + kill + check. Returns the images as checked."""
    snaps = [kill_vm.read_image(p) for p in paths]
    cmdline = (f"console=ttyS0 panic=-1 minivmm_agent.continuous=1 minivmm_agent.generation={generation} "
               f"minivmm_agent.seed={agent_seed} minivmm_agent.flush_every={args.flush_every} "
               f"minivmm_agent.span={args.span} minivmm_agent.multi={args.multi} "
               f"minivmm_agent.start_sector={START_SECTOR} "
               f"minivmm_agent.expect_disks={len(MODES)}")
    run = kill_vm.boot_and_kill(args.minivmm, args.kernel, list(zip(paths, MODES)), cmdline,
                                offset, args.boot_timeout)
    log = agent_log.parse("\n".join(run.console))
    after = [kill_vm.read_image(p) for p in paths]
    problems = []
    if run.error:
        problems.append(f"kill {round_no}: {run.error}")
    if log.errors:
        problems.append(f"kill {round_no}: agent errors: " + "; ".join(log.errors[:3]))
    mapping, disk_problems = guest_disks(log)
    # The boot of round k opens the images the kill of round k-1 left behind.
    problems += [f"kill {round_no}: reopen: {p}" for p in disk_problems]
    flight = in_flight(run.console, args.flush_every, len(MODES), args.multi)

    bad = bool(problems)
    per_mode = []
    for i, mode in enumerate(MODES):
        t = totals[i]
        disk = mapping.get(i, i)
        acks = log.acks_of(disk)
        lbs = log.disks[disk].lbs if disk in log.disks else records.SECTOR
        layout = kill_check.Layout(args.span, START_SECTOR, lbs, agent_seed, args.multi)
        max_seq = max((a.seq for a in acks), default=-1) + args.multi
        res = kill_check.check_disk(snaps[i], after[i], acks, disk, generation, layout, max_seq)
        t.kills += 1
        t.acked += res.acked
        t.verified += res.verified
        t.superseded += res.superseded
        t.landed_unacked += res.landed_unacked
        if flight and flight[1] == disk:
            t.mid_write += flight[0] == "write"
            t.mid_flush += flight[0] == "flush"
        t.violations += [f"kill {round_no} {mode}: {v}" for v in res.violations]
        bad |= bool(res.violations)
        per_mode.append(f"{mode}={res.acked}/{res.verified}" + (f"!{len(res.violations)}" if res.violations else ""))
    failures += problems

    fl = f"{flight[0]} on vd{chr(97 + flight[1])}" if flight else "nothing yet"
    boot = f"{run.boot_s:.1f}" if run.boot_s is not None else "-"
    kill_at = f"{run.kill_after_ack_s:.2f}" if run.kill_after_ack_s is not None else "-"
    print(f"kill {round_no:3d}/{args.kills} gen {generation} boot {boot} s, killed {kill_at} s "
          f"after first ack (planned {offset:.2f}), in flight: {fl}; acked/verified "
          + " ".join(per_mode) + ("  VIOLATION" if bad else ""), flush=True)
    for v in problems + [v for t in totals for v in t.violations if v.startswith(f"kill {round_no} ")]:
        print("  ", v, flush=True)
    if bad:
        print("   evidence kept in", save_evidence(args.workdir_used, round_no, run, snaps, paths), flush=True)
    return after


def final_boot(args, paths: list[str], checked: list[bytes], failures: list[str]) -> bool:
    """A plain boot on the killed images: every disk probed, exit 0, images untouched."""
    cmdline = "console=ttyS0 panic=-1 minivmm_agent.exit_status=0"
    run = kill_vm.boot_to_exit(args.minivmm, args.kernel, list(zip(paths, MODES)), cmdline,
                               args.boot_timeout)
    problems = []
    if run.error or run.rc != 0:
        problems.append(f"final boot: exit code {run.rc}, expected 0 {run.error}".rstrip())
    probed = {m.group(1): int(m.group(2)) for m in PROBED.finditer("\n".join(run.console))}
    for i, mode in enumerate(MODES):
        name = chr(ord("a") + i)
        want = image_bytes(i) // records.SECTOR
        if probed.get(name) != want:
            problems.append(f"final boot: {mode}: no 'virtio_blk virtioN: [vd{name}] {want} 512-byte "
                            f"logical blocks' line (probed: {probed})")
    for i, path in enumerate(paths):
        if kill_vm.read_image(path) != checked[i]:
            problems.append(f"final boot: {MODES[i]}: the image changed during a boot without a workload")
    print(f"final plain boot: exit code {run.rc}, {len(probed)} disks probed, "
          f"{run.boot_s:.1f} s" + ("" if not problems else "  FAILED"), flush=True)
    for p in problems:
        print("  ", p)
    if problems:
        kill_vm.write_file(os.path.join(args.workdir_used, "final-boot.console.log"), "\n".join(run.console))
        kill_vm.write_file(os.path.join(args.workdir_used, "final-boot.minivmm.log"), run.vmm_log)
    failures += problems
    return not problems


def print_table(args, totals: list[ModeTotals], failures: list[str], final_ok: bool | None,
                elapsed: float) -> None:
    date = datetime.date.today().isoformat()
    print(f"\nkill campaign, seed {args.seed}, {date}: {totals[0].kills} of {args.kills} kills, "
          f"window {args.window:g} s after the first ack, flush every {args.flush_every} records, "
          f"span {args.span}, multi={args.multi} (records per write request), {elapsed / 60:.1f} min")
    print("| mode | kills | records acknowledged | records verified | superseded | landed unacked "
          "| killed mid-write | killed mid-flush | violations |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode, t in zip(MODES, totals):
        print(f"| {mode} | {t.kills} | {t.acked} | {t.verified} | {t.superseded} | {t.landed_unacked} "
              f"| {t.mid_write} | {t.mid_flush} | {len(t.violations)} |")
    final = {None: "not run", True: "exit 0, all 5 disks probed, images unchanged", False: "FAILED"}[final_ok]
    print(f"reopen: every boot after a kill saw all 5 disks unless listed below; final plain boot: {final}")
    print(f"other failures: {len(failures)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("minivmm")
    ap.add_argument("kernel")
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--window", type=float, default=6.0, help="kill uniform in [0, W] s after the first ack")
    ap.add_argument("--flush-every", type=int, default=2, help="agent flush_every")
    ap.add_argument("--span", type=int, default=64, help="agent span: record slots per disk")
    ap.add_argument("--multi", type=int, default=1,
                    help="agent multi: records (one page each) per write bio; 1..16, divides span")
    ap.add_argument("--boot-timeout", type=float, default=240)
    ap.add_argument("--workdir", default="/var/tmp", help="where images go (must support O_DIRECT)")
    ap.add_argument("--keep", action="store_true", help="keep images and logs even when all passed")
    args = ap.parse_args()
    if not 1 <= args.multi <= 16 or args.span % args.multi:
        print(f"FAIL: --multi {args.multi} must be in [1, 16] and divide --span {args.span}")
        return 1
    for path, what in [(args.minivmm, "minivmm binary"), (args.kernel, "guest kernel (scripts/build-guest.sh)")]:
        if not os.path.exists(path):
            print(f"FAIL: {what} {path} not found")
            return 1
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("FAIL: /dev/kvm not accessible; the kill campaign boots VMs")
        return 1

    args.workdir_used = tempfile.mkdtemp(prefix=f"minivmm-kill-{args.seed}-", dir=args.workdir)
    rng = random.Random(args.seed)
    schedule = [(rng.uniform(0, args.window), rng.randrange(1, 1 << 31)) for _ in range(args.kills)]
    paths = make_images(args.workdir_used, args.seed)
    print(f"kill campaign: seed {args.seed}, {args.kills} kills, multi={args.multi}, images in {args.workdir_used}", flush=True)

    totals = [ModeTotals() for _ in MODES]
    failures: list[str] = []
    started = time.monotonic()
    checked = None
    for n, (offset, agent_seed) in enumerate(schedule, start=1):
        if checked is not None:
            for i, p in enumerate(paths):
                if kill_vm.read_image(p) != checked[i]:
                    failures.append(f"kill {n - 1}: {MODES[i]}: image changed after minivmm died")
        try:
            checked = kill_round(args, n, n, offset, agent_seed, paths, totals, failures)
        except OSError as e:  # e.g. the binary replaced by a rebuild mid-campaign
            failures.append(f"kill {n}: cannot run minivmm: {e}; campaign stopped")
            checked = None
            break
    final_ok = final_boot(args, paths, checked, failures) if checked is not None else None
    print_table(args, totals, failures, final_ok, time.monotonic() - started)
    violations = sum(len(t.violations) for t in totals) + len(failures)
    for f in failures:
        print("FAIL:", f)
    if violations:
        print(f"FAIL: {violations} violation(s) and failure(s); images and logs kept in {args.workdir_used}")
        return 1
    print("PASS: every acked record intact, no torn or foreign block, every image reopened")
    if args.keep:
        print(f"kept {args.workdir_used}")
    else:
        shutil.rmtree(args.workdir_used)
    return 0


if __name__ == "__main__":
    sys.exit(main())
