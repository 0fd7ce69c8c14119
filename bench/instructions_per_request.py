#!/usr/bin/env python3
"""User-space instructions per request through the device path, for one or
more device_bench binaries measured in the same run (e.g. before and after a
change). Instruction counts (callgrind) repeat within a fraction of a percent
where wall-clock rows on a shared machine move 2x.

Each binary runs twice under callgrind (--separate-threads=yes) with
--requests N and 2N (5 rows each, unsafe mode, no polling, no peers); the
difference over the 5N extra requests is the cost per request with start-up
cancelled. Thread 1 is the driver (bench's main thread), thread 2 the device
thread (VirtioBlk, Disk, engine).

usage: bench/instructions_per_request.py [--requests N] [--file PATH] DEVICE_BENCH...
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

ROWS = 5  # device_bench's rows per mode: write/read QD1 and QD32, write+flush


def thread_totals(out_dir: str) -> dict[int, int]:
    """Instruction totals by callgrind thread number (1 = main)."""
    totals = {}
    for path in glob.glob(os.path.join(out_dir, "cg.out-*")):
        thread = int(path.rsplit("-", 1)[1])
        with open(path) as f:
            m = re.search(r"^totals: (\d+)", f.read(), re.M)
        if not m:
            sys.exit(f"{path}: no 'totals:' line (did callgrind finish?)")
        totals[thread] = int(m.group(1))
    return totals


def measure(binary: str, requests: int, image: str) -> dict[int, int]:
    with tempfile.TemporaryDirectory() as out_dir:
        cmd = ["valgrind", "--tool=callgrind", "--separate-threads=yes",
               f"--callgrind-out-file={out_dir}/cg.out", binary, "--file", image,
               "--no-peers", "--mode", "unsafe", "--size-mib", "32", "--requests", str(requests),
               "--poll-max-us", "0", "--driver-halt-poll-us", "0"]
        run = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run.returncode != 0:
            sys.exit(f"{binary}: exit {run.returncode}\n{run.stderr[-2000:]}")
        return thread_totals(out_dir)


def per_request(binary: str, requests: int, image: str) -> tuple[float, float]:
    small = measure(binary, requests, image)
    large = measure(binary, 2 * requests, image)
    extra = ROWS * requests
    device = (large.get(2, 0) - small.get(2, 0)) / extra
    total = (sum(large.values()) - sum(small.values())) / extra
    return device, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--file", default="/var/tmp/minivmm-ipr.img")
    ap.add_argument("binaries", nargs="+")
    args = ap.parse_args()
    rows = [(b, *per_request(b, args.requests, args.file)) for b in args.binaries]
    base_device, base_total = rows[0][1], rows[0][2]
    print("| device_bench | device thread Ir/request | all threads Ir/request | vs first |")
    print("|---|---|---|---|")
    for binary, device, total in rows:
        print(f"| {binary} | {device:.0f} | {total:.0f} | {device / base_device:.3f} / {total / base_total:.3f} |")
    if os.path.exists(args.file):
        os.unlink(args.file)


if __name__ == "__main__":
    main()
