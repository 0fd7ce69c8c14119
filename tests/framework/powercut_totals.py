"""The power-cut campaign's per-mode totals (tests/crash/powercut_campaign.py):
each cut's checked images added up, with two cross-checks that turn into
violations: minivmm's durability window (what its last SIGUSR1 report called
at risk plus what was acked after it bounds what a cut may lose) and the
write-log simulator (a sector it had durable must not be lost)."""
from __future__ import annotations

import dataclasses
import json

from framework import agent_log
from framework.cache_modes import MODES


@dataclasses.dataclass
class ModeTotals:
    cuts: int = 0
    acked: int = 0
    flushed: int = 0
    promised: int = 0
    verified: int = 0
    lost: int = 0
    lost_flushed: int = 0
    landed_unacked: int = 0
    violations: int = 0
    # minivmm's durability window cross-check (README, disks; SIGUSR1 reports):
    risk_cuts: int = 0          # cuts with a complete report before the cut
    lost_bytes: int = 0         # 512 per lost record
    reported_bytes: int = 0     # at_risk_bytes of the last report before each cut
    acked_after_bytes: int = 0  # 512 per record acked after that report's SIGUSR1
    risk_violations: int = 0    # cuts that lost more than the two together
    # --write-log: the cut's outcome against the write-log simulator, per sector
    # (= record): its newest host write durable or at risk at the end of the log.
    wlog_cuts: int = 0
    wlog_sectors: int = 0
    wlog_at_risk: int = 0
    wlog_lost: int = 0
    wlog_lost_at_risk: int = 0
    wlog_lost_durable: int = 0  # lost although the simulator had it durable: disagreement
    wlog_survived_at_risk: int = 0


def risk_before_cut(lines, disk_of_image: list[int]) -> dict | None:
    """minivmm's last complete durability report before the cut (powercut_inner.py's `PC risk`
    line) and, per image, the records acked after its `PC usr1` marker (sent before the signal,
    so every ack line above it was in that report's snapshot). None when no report came."""
    marker_at: dict[int, int] = {}
    last = None
    for pos, (_, line) in enumerate(lines):
        if line.startswith("PC usr1 "):
            marker_at[json.loads(line.split(" ", 2)[2])["k"]] = pos
        elif line.startswith("PC risk "):
            report = json.loads(line.split(" ", 2)[2])
            if report["k"] in marker_at:
                last = report
    if last is None:
        return None
    after: dict[int, int] = {}
    for ack in agent_log.parse("\n".join(line for _, line in lines[marker_at[last["k"]] + 1:])).acks:
        after[ack.disk] = after.get(ack.disk, 0) + 1
    return {"k": last["k"], "at_risk_bytes": [d[0] for d in last["disks"]],
            "at_risk_requests": [d[1] for d in last["disks"]],
            "acked_after": [after.get(d, 0) for d in disk_of_image]}


def account(check: dict, totals: list[ModeTotals], bad_modes: set[str], failures_detail: list[str],
            risk: dict | None = None) -> str:
    parts = []
    for i, mode in enumerate(MODES):
        r = check["images"][mode]
        t = totals[i]
        t.cuts += 1
        for k in ("acked", "flushed", "promised", "verified", "lost", "lost_flushed", "landed_unacked"):
            setattr(t, k, getattr(t, k) + r[k])
        t.violations += r["violation_count"]
        lost_bytes = r["lost"] * 512  # a record is one 512-byte block
        t.lost_bytes += lost_bytes
        if risk is not None:
            # The upper bound minivmm's window must give: what it reported at risk just
            # before the cut plus what was acknowledged after that report.
            reported, after = risk["at_risk_bytes"][i], risk["acked_after"][i] * 512
            t.risk_cuts += 1
            t.reported_bytes += reported
            t.acked_after_bytes += after
            if lost_bytes > reported + after:
                t.risk_violations += 1
                r["violation_count"] += 1
                r["violations"] = [f"lost {lost_bytes} bytes ({r['lost']} records), more than minivmm reported "
                                   f"at risk ({reported} B in report {risk['k']}) plus the {after} B acked "
                                   f"after it"] + r["violations"]
                t.violations += 1
        w = r.get("wlog")
        if w is not None:
            if "error" in w:
                r["violation_count"] += 1
                r["violations"] = [f"write log unusable: {w['error']}"] + r["violations"]
                t.violations += 1
            else:
                t.wlog_cuts += 1
                for k in ("sectors", "at_risk", "lost", "lost_at_risk", "lost_durable", "survived_at_risk"):
                    setattr(t, "wlog_" + k, getattr(t, "wlog_" + k) + w[k])
                if w["lost_durable"]:
                    # The simulator's model (durable = DSYNC completion or a later fdatasync) was wrong.
                    r["violation_count"] += w["lost_durable"]
                    r["violations"] = w["disagreements"] + r["violations"]
                    t.violations += w["lost_durable"]
        if r["violation_count"]:
            bad_modes.add(mode)
            failures_detail += [f"cut {check['round']} {mode}: {v}" for v in r["violations"]]
        parts.append(f"{mode}={r['acked']}/{r['flushed']}/{r['lost']}" + (f"!{r['violation_count']}" if r["violation_count"] else ""))
    return " ".join(parts)
