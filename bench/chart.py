#!/usr/bin/python3
"""Draws scripts/bench.sh's tables (storage_bench, device_bench) as one PNG.

One row of panels per file, one panel per test row (write QD1, ... flush):
for each cache mode minivmm's IOPS next to qemu-img bench's, log scale, the
"vs qemu" ratio above each pair, fio io_uring direct=1 (the raw device) as a
dashed line. Usage: chart.py [-o out.png] [FILE...]; without files, the
latest saved outputs in $MINIVMM_BENCH_OUT (default ~/.cache/minivmm/bench).
"""
import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import Optional

KINDS = {"minivmm": "storage", "device": "device"}  # first word of "who / mode"
TITLES = {"storage": "storage_bench: storage::Disk alone",
          "device": "device_bench: driver -> virtqueue -> VirtioBlk -> Disk"}


class ChartError(Exception):
    """A file that is missing or not scripts/bench.sh output (names file and line)."""


@dataclass
class Row:
    mode: str
    test: str
    iops: float
    qemu_iops: Optional[float]  # None: run with --no-peers or qemu-img failed
    vs_qemu: Optional[float]


@dataclass
class Table:
    path: str
    kind: str = ""
    date: str = "date not recorded"
    cpus: str = ""    # "16 CPUs", from the date line
    driver: str = ""  # device_bench: how the driver waits (its "driver:" line)
    load_before: str = "?"
    load_after: str = "?"
    rows: list = field(default_factory=list)  # minivmm's rows, Row
    fio: dict = field(default_factory=dict)   # (variant, test) -> IOPS

    def tests(self):
        return list(dict.fromkeys(r.test for r in self.rows))


def default_dir():
    return os.environ.get("MINIVMM_BENCH_OUT") or os.path.expanduser("~/.cache/minivmm/bench")


def _number(cell, what, where):
    try:
        return None if cell == "-" else float(cell.removesuffix("x"))
    except ValueError:
        raise ChartError(f"{where}: {what} is not a number: {cell!r}") from None


def parse(path):
    """Parses one saved output of scripts/bench.sh (leading indentation allowed)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ChartError(f"{path}: cannot read: {e.strerror}") from None
    t, header = Table(path), False
    for n, raw in enumerate(lines, 1):
        line, where = raw.strip(), f"{path}:{n}"
        if line.startswith("date:"):
            t.date = line.split()[1]
            cpus = [w for w in line.replace(",", " ").split() if w.isdigit()]
            t.cpus = f"{cpus[0]} CPUs" if "CPUs" in line and cpus else ""
        elif line.startswith("driver:"):
            t.driver = line[len("driver:"):].split(";")[0].strip()
        elif line.startswith("load before:"):
            t.load_before = " ".join(line.split()[2:5])
        elif line.startswith("load after:"):
            t.load_after = " ".join(line.split()[2:5])
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cells[0] == "who / mode":
                if header:
                    raise ChartError(f"{where}: a second table; give one bench.sh output per file")
                if cells[:3] != ["who / mode", "test", "IOPS"] or "qemu-img IOPS" not in cells:
                    raise ChartError(f"{where}: unexpected table header: {line}")
                header, ncols = True, len(cells)
                continue
            if set(line) <= set("|- "):
                continue
            if not header:
                raise ChartError(f"{where}: table row before the '| who / mode |' header")
            if len(cells) != ncols:
                raise ChartError(f"{where}: {len(cells)} columns, the header has {ncols}: {line}")
            who, test = cells[0].split(None, 1), cells[1]
            if len(who) != 2 or not test:
                raise ChartError(f"{where}: expected 'program mode' and a test name: {line}")
            iops = _number(cells[2], "IOPS", where)
            if iops is None:
                raise ChartError(f"{where}: IOPS missing: {line}")
            if who[0] == "fio":
                t.fio[(who[1], test)] = iops
                continue
            kind = KINDS.get(who[0])
            if kind is None or (t.kind and kind != t.kind):
                raise ChartError(f"{where}: unexpected program {who[0]!r} "
                                 f"(minivmm, device or fio, one of the first two per file)")
            t.kind = kind
            t.rows.append(Row(who[1], test, iops, _number(cells[5], "qemu-img IOPS", where),
                              _number(cells[6], "vs qemu", where)))
    if not t.rows:
        raise ChartError(f"{path}: no benchmark table (rows under '| who / mode | test | IOPS |')")
    return t


def render(tables, out):
    try:
        import matplotlib
    except ImportError:
        raise ChartError("python3-matplotlib is not installed (scripts/install-deps.sh)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = max(len(t.tests()) for t in tables)
    values = [v for t in tables for r in t.rows for v in (r.iops, r.qemu_iops) if v]
    values += [v for t in tables for v in t.fio.values() if v]
    ylim = (min(values) / 2, max(values) * 4)  # room above the bars for the ratios
    fig = plt.figure(figsize=(3.4 * ncols, 4.4 * len(tables)), layout="constrained")
    fig.suptitle("minivmm vs qemu-img bench, 4 KiB requests, IOPS (log scale); "
                 "above each pair: minivmm / qemu-img", fontweight="bold")
    for sub, t in zip(fig.subfigures(len(tables), 1, squeeze=False)[:, 0], tables):
        driver = f"; driver {t.driver}" if t.driver else ""
        cpus = f", {t.cpus}" if t.cpus else ""
        # Two lines: a long driver description would run past the figure.
        sub.suptitle(f"{TITLES[t.kind]}{driver}\n({os.path.basename(t.path)}, {t.date}{cpus}, "
                     f"load before {t.load_before}, after {t.load_after})")
        axes = sub.subplots(1, ncols, sharey=True, squeeze=False)[0]
        for ax, test in zip(axes, t.tests()):
            rows = [r for r in t.rows if r.test == test]
            x = range(len(rows))
            ax.bar([i - 0.2 for i in x], [r.iops for r in rows], 0.4, color="tab:blue",
                   label="minivmm")
            ax.bar([i + 0.2 for i in x], [r.qemu_iops or float("nan") for r in rows], 0.4,
                   color="tab:orange", label="qemu-img bench")
            for i, r in zip(x, rows):
                if r.vs_qemu is not None:
                    ax.annotate(f"{r.vs_qemu:.2f}x", (i, max(r.iops, r.qemu_iops or 0)),
                                xytext=(0, 3), textcoords="offset points", ha="center",
                                fontsize=8, color="darkgreen" if r.vs_qemu >= 1 else "darkred",
                                bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none"))
            if ("direct=1", test) in t.fio:
                ax.axhline(t.fio[("direct=1", test)], color="gray", linestyle="--",
                           linewidth=1, label="fio io_uring direct=1 (raw device)")
            ax.set_yscale("log")
            ax.set_ylim(*ylim)
            ax.set_title(test, fontsize=10)
            ax.set_xticks(list(x), [r.mode for r in rows], rotation=35, ha="right", fontsize=8)
            ax.grid(axis="y", which="major", alpha=0.3)
        axes[0].set_ylabel("IOPS")
        axes[0].legend(loc="upper left", fontsize=7)
        for ax in axes[len(t.tests()):]:
            ax.set_visible(False)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="saved bench.sh outputs (default: the latest)")
    ap.add_argument("-o", "--output", default="docs/bench-chart.png")
    args = ap.parse_args(argv)
    files = args.files
    try:
        if not files:
            files = [p for p in (os.path.join(default_dir(), f"{w}-latest.txt")
                                 for w in ("storage", "device", "device-poll")) if os.path.exists(p)]
            if not files:
                raise ChartError(f"no saved results in {default_dir()} "
                                 "(run scripts/bench.sh storage and/or device first)")
        render([parse(p) for p in files], args.output)
    except ChartError as e:
        print(f"bench-chart: {e}", file=sys.stderr)
        return 1
    print(f"bench-chart: wrote {args.output} from {', '.join(files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
