#!/usr/bin/env python3
"""The sandbox side of the power-cut campaign (powercut_campaign.py runs it).

Runs inside the nested-KVM sandbox (scripts/nested-kvm.sh --scratch IMG), where
/var/tmp is an ext4 on the kept scratch disk, and does what one round spec
(a JSON file the host wrote; the host's / is visible at the same paths) asks,
in this order, printing one `PC <kind> <json>` line per result on stdout
(the runner streams it to the host as it comes):

  setup     create the five images (4..8 MiB of seeded noise, one per cache
            mode) and make them durable (fsync, directory fsync)
  check     the previous cut's images against what the host saw the agent
            report (powercut_check.py), per image; with the cut's write
            logs (spec check.write_logs), also what the cut lost against
            the write-log simulator's at-risk set (powerloss_check.py)
  snapshot  copy every image to <image>.snap and make the copies durable:
            the "previous content" the next check compares against
  workload  minivmm with the five disks and the agent's continuous plan;
            every `agent ...` console line is copied to stdout at once,
            minivmm's log to stderr. Once the agent runs, every
            --usr1-interval s (0.5) it prints `PC usr1 {"k":K}`, then sends
            minivmm SIGUSR1, and when all five `disk N stats:` lines of that
            report came, prints `PC risk {"k":K,"disks":[[at_risk_bytes,
            at_risk_requests,flush_p50_us,flush_p99_us,flush_max_us],...]}`
            (minivmm's disk order = image order); the next SIGUSR1 only then.
            Every ack line before the `PC usr1` line was acknowledged before
            that report's snapshot. It never ends by itself: the host cuts
            the power (SIGKILL of the runner kills QEMU) at a moment of its
            choosing. After max_s seconds without a cut it stops minivmm and
            exits 3. With workload.write_log every disk logs its host writes
            (write_log=) into $MINIVMM_NESTED_RUN_DIR, which the sandbox
            writes through to the host, so the logs survive the cut.
  final     a plain boot (no plan, exit_status=0) on the images: every disk
            probed, exit 0, images unchanged

Exit status 0 when every step asked for ran (the check's verdict is in its
lines, the host judges it), 2 on a bad spec or a missing file.

usage: powercut_inner.py SPEC.json
"""
from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
from framework import campaign
from framework import kill_check
from framework import kill_vm
from framework import powercut_check
from framework import powerloss_check
from framework import records
from framework import vmm_log
from framework.cache_modes import MODES

# The durability fields of a `disk N stats:` line, in the order the campaign reports them.
RISK_FIELDS = ["at_risk_bytes", "at_risk_requests", "flush_p50_us", "flush_p99_us", "flush_max_us"]


def emit(kind: str, payload) -> None:
    sys.stdout.write(f"PC {kind} {json.dumps(payload, separators=(',', ':'))}\n")
    sys.stdout.flush()


def fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def image_paths(spec: dict) -> list[str]:
    return [os.path.join(spec["images_dir"], f"{i}-{mode}.img") for i, mode in enumerate(MODES)]


def setup(spec: dict) -> None:
    os.makedirs(spec["images_dir"], exist_ok=True)
    paths = campaign.make_images(spec["images_dir"], spec["image_seed"])
    for p in paths:
        fsync_path(p)
    fsync_path(spec["images_dir"])
    emit("setup", {"images": paths, "bytes": [os.path.getsize(p) for p in paths]})


def check(spec: dict) -> None:
    c = spec["check"]
    out = {"round": c["round"], "images": {}}
    for i, (mode, path) in enumerate(zip(MODES, image_paths(spec))):
        disk = c["disk_of_image"][i]
        acks = [records.Ack(*a) for a in c["acks"] if a[0] == disk]
        flushed_upto = max((seq for d, seq in c["flushes"] if d == disk), default=-1)
        layout = kill_check.Layout(c["span"], campaign.START_SECTOR, c["lbs"].get(str(disk), 512),
                                   c["agent_seed"], c["multi"])
        image = None
        try:
            image = kill_vm.read_image(path)
            snap = kill_vm.read_image(path + ".snap")
        except OSError as e:
            res = powercut_check.Result(acked=len(acks), violations=[f"cannot read the image: {e}"])
        else:
            res = powercut_check.check_image(snap, image, acks, flushed_upto, disk, c["generation"],
                                             layout, powercut_check.PROMISE[mode])
        out["images"][mode] = res.as_dict()
        logs = c.get("write_logs")
        if logs and image is not None:
            try:
                out["images"][mode]["wlog"] = powerloss_check.compare_after_cut(logs[i], image)
            except (OSError, powerloss_check.LogError) as e:
                out["images"][mode]["wlog"] = {"error": str(e)}
    emit("check", out)


def snapshot(spec: dict) -> None:
    for path in image_paths(spec):
        data = kill_vm.read_image(path)
        with open(path + ".snap", "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    fsync_path(spec["images_dir"])
    emit("snapshot", {"round": spec["workload"]["round"]})


def workload(spec: dict) -> int:
    w = spec["workload"]
    cmdline = (f"console=ttyS0 panic=-1 minivmm_agent.continuous=1 minivmm_agent.generation={w['generation']} "
               f"minivmm_agent.seed={w['agent_seed']} minivmm_agent.flush_every={w['flush_every']} "
               f"minivmm_agent.span={w['span']} minivmm_agent.multi={w['multi']} "
               f"minivmm_agent.start_sector={campaign.START_SECTOR} "
               f"minivmm_agent.expect_disks={len(MODES)}")
    logs = None
    if w.get("write_log"):
        # The run directory is written through to the host: the logs survive the cut.
        run_dir = os.environ.get("MINIVMM_NESTED_RUN_DIR")
        if not run_dir:
            print("powercut_inner: write_log needs MINIVMM_NESTED_RUN_DIR (the sandbox's run directory)",
                  file=sys.stderr)
            return 2
        logs = [os.path.join(run_dir, os.path.basename(p)[:-len(".img")] + ".wlog") for p in image_paths(spec)]
    cmd = kill_vm._command(spec["minivmm"], spec["kernel"], list(zip(image_paths(spec), MODES)), cmdline, logs)
    env = dict(os.environ)
    if w.get("bug"):
        env["LD_PRELOAD"] = w["shim"]
        env["MINIVMM_POWERCUT_BUG"] = w["bug"]
    emit("workload", {"round": w["round"], "started": time.time()})
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, bufsize=0)
    deadline = time.monotonic() + w.get("max_s", 900)
    interval = w.get("usr1_interval", 0.5)
    bufs = {proc.stdout.fileno(): b"", proc.stderr.fileno(): b""}
    agent_running = False  # SIGUSR1 only once minivmm blocks it (before, it would kill it)
    k = 0
    pending: dict | None = None  # the report being collected: disk -> fields
    last_sent = 0.0
    # Copy each complete agent line to our stdout as soon as it arrives.
    while bufs:
        ready, _, _ = select.select(list(bufs), [], [], 0.1)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                del bufs[fd]
                continue
            *lines, bufs[fd] = (bufs[fd] + chunk).split(b"\n")
            if fd == proc.stdout.fileno():
                keep = [ln for ln in lines if b"agent " in ln or b"virtio_blk" in ln]
                agent_running = agent_running or any(b"agent " in ln for ln in keep)
                if keep:
                    sys.stdout.buffer.write(b"".join(ln.rstrip(b"\r") + b"\n" for ln in keep))
                    sys.stdout.flush()
                continue
            sys.stderr.buffer.write(b"".join(ln + b"\n" for ln in lines))
            sys.stderr.flush()
            for ln in lines:
                st = vmm_log.parse_stats_line(ln)
                if st and pending is not None:
                    pending[st.disk] = [st[f] for f in RISK_FIELDS]
            if pending is not None and len(pending) == len(MODES):
                emit("risk", {"k": k, "disks": [pending[i] for i in range(len(MODES))]})
                pending = None
        now = time.monotonic()
        if agent_running and pending is None and now - last_sent >= interval and proc.poll() is None:
            k += 1
            emit("usr1", {"k": k})  # before the signal: every ack line above predates the snapshot
            pending = {}
            last_sent = now
            try:
                os.kill(proc.pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass
        if now > deadline:
            proc.kill()
            break
    rc = proc.wait()
    emit("workload-ended", {"round": w["round"], "rc": rc})
    return 3


def final(spec: dict) -> None:
    paths = image_paths(spec)
    before = [hashlib.sha256(kill_vm.read_image(p)).hexdigest() for p in paths]
    run = kill_vm.boot_to_exit(spec["minivmm"], spec["kernel"], list(zip(paths, MODES)),
                               "console=ttyS0 panic=-1 minivmm_agent.exit_status=0", spec.get("final_timeout", 600))
    after = [hashlib.sha256(kill_vm.read_image(p)).hexdigest() for p in paths]
    probed = {m.group(1): int(m.group(2)) for m in campaign.PROBED.finditer("\n".join(run.console))}
    emit("final", {"rc": run.rc, "error": run.error, "probed": probed, "seconds": round(run.boot_s, 1),
                   "unchanged": [b == a for b, a in zip(before, after)],
                   "log_tail": run.vmm_log.splitlines()[-5:] if run.rc != 0 else []})


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    for what in ("minivmm", "kernel"):
        if not os.path.exists(spec[what]):
            print(f"powercut_inner: {what} {spec[what]} not found", file=sys.stderr)
            return 2
    if spec.get("setup"):
        setup(spec)
    if spec.get("check"):
        check(spec)
    if spec.get("workload"):
        snapshot(spec)
        return workload(spec)
    if spec.get("final"):
        final(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
