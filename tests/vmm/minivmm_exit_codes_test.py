#!/usr/bin/env python3
"""The minivmm binary's documented exit codes and error messages for bad
input: each case runs the real binary and checks its exit code and that the
message names what is wrong. None of these boot a guest."""
import os
import subprocess
import sys
import tempfile

MINIVMM = sys.argv[1]
failures = []


def run(args, expect_code, expect_text=()):
    p = subprocess.run([MINIVMM, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=60)
    out = p.stdout.decode(errors="replace")
    ok = p.returncode == expect_code and all(t in out for t in expect_text)
    print(f"{'ok  ' if ok else 'FAIL'} {args!r}: exit {p.returncode} (want {expect_code})")
    if not ok:
        print("   output:", out.strip()[-800:])
        failures.append(args)


with tempfile.TemporaryDirectory() as d:
    def path(name, content=b""):
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(content)
        return p

    run(["--help"], 0, ["usage: minivmm", "Exit codes"])
    run(["--version"], 0, ["minivmm"])
    run(["--frobnicate"], 64, ["unknown option '--frobnicate'"])
    run(["--memory", "lots", "--kernel", "/x"], 64, ["--memory"])
    run([], 64, ["no kernel"])
    run(["--config", os.path.join(d, "missing.toml")], 65, ["missing.toml"])
    bad = path("bad.toml", b"[machine]\nmemory_mib = 64\nmemroy_mib = 3\n")
    run(["--config", bad], 65, ["machine.memroy_mib", "bad.toml:3"])
    badcache = path("cache.toml", b"[kernel]\npath='/k'\n[[disk]]\npath = 'a.img'\ncache = 'fast'\n")
    run(["--config", badcache], 65, ["disk[0].cache", "writeback, none, writethrough, directsync, unsafe"])
    run(["--kernel", "/k", "--kvm", os.path.join(d, "no-kvm")], 69,
        ["cannot open", "no-kvm", "modprobe", "scripts/nested-kvm.sh"])
    run(["--kernel", "/k", "--kvm", "/dev/null"], 69, ["/dev/null", "API version"])
    run(["--kernel", os.path.join(d, "nope")], 66, ["nope"])
    run(["--kernel", path("empty")], 66, ["empty"])
    run(["--kernel", path("garbage", os.urandom(8192))], 66, ["neither an ELF vmlinux nor a bzImage"])
    run(["--kernel", path("trunc.elf", b"\x7fELF\x02\x01\x01" + b"\0" * 20)], 66, ["trunc.elf"])
    # A good kernel is not needed to reach the disk checks: a missing disk is
    # reported before the guest starts, whatever the kernel.
    elf = os.environ.get("MINIVMM_TEST_VMLINUX", "")
    if elf and os.path.exists(elf):
        run(["--kernel", elf, "--disk", os.path.join(d, "nodisk.img")], 66, ["nodisk.img"])
        run(["--kernel", elf, "--disk", d], 66, [d])
        # Disk counts: past what any command line holds, a config error at
        # once; past what the configured command line leaves, one at start
        # (before any disk is opened: these images do not exist).
        many = [a for i in range(58) for a in ("--disk", os.path.join(d, f"d{i}.img"))]
        run(["--kernel", elf, *many], 65, ["58 disks", "at most 57", "COMMAND_LINE_SIZE"])
        long_cmdline = "console=ttyS0 " + "x" * 1000
        run(["--kernel", elf, "--cmdline", long_cmdline, *many[:2 * 40]], 65,
            ["40 disks do not fit the kernel command line", "at most 2047 characters",
             "leaving room for"])

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
