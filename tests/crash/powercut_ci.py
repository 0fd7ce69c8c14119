#!/usr/bin/env python3
"""CI subset of the power-cut campaign (ctest crash.powercut_small).

Two campaigns, each on its own fresh scratch disk:
  1. the real minivmm, seed 7, 2 cuts: no violation in any mode, every image
     reopened, and unsafe must lose acknowledged records (proof that the cut
     drops the sandbox's page cache);
  2. the same binary with the test-only shim dropping RWF_DSYNC on the
     writethrough image (--bug drop-dsync:writethrough), seed 8, 1 cut:
     violations in writethrough and in no other mode (proof that the
     campaign can fail, and fails for the broken mode only).

usage: powercut_ci.py MINIVMM KERNEL SHIM
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CAMPAIGN = os.path.join(HERE, "powercut_campaign.py")


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    minivmm, kernel, shim = sys.argv[1:]
    runs = [
        ("real minivmm", ["--cuts", "2", "--seed", "7", "--require-unsafe-loss"]),
        ("injected bug: writethrough without RWF_DSYNC",
         ["--cuts", "1", "--seed", "8", "--bug", "drop-dsync:writethrough", "--shim", shim,
          "--expect-violations", "writethrough"]),
    ]
    failed = []
    for what, opts in runs:
        print(f"=== {what}", flush=True)
        rc = subprocess.call([sys.executable, CAMPAIGN, minivmm, kernel, "--window", "6", *opts])
        if rc != 0:
            failed.append(what)
    if failed:
        print("FAIL:", "; ".join(failed))
        return 1
    print("PASS: no violation with the real minivmm, unsafe lost data, the injected bug was caught in writethrough only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
