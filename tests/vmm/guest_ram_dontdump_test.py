#!/usr/bin/env python3
"""Guest RAM is left out of minivmm's core dumps: the
mapping that backs it carries madvise(MADV_DONTDUMP), which
/proc/PID/smaps shows as the "dd" VmFlag (proc(5)). Runs minivmm with an
odd RAM size (80 MiB, so the mapping is the only one of that size) on a
tiny spinning guest and reads its smaps.
usage: guest_ram_dontdump_test.py MINIVMM"""
import signal
import subprocess
import sys
import tempfile
import time

from framework import tiny_guest

MINIVMM = sys.argv[1]
RAM_KB = 80 * 1024


def ram_mappings(pid):
    """VmFlags of every mapping of exactly RAM_KB."""
    found, size = [], None
    for line in open(f"/proc/{pid}/smaps"):
        if line.startswith("Size:"):
            size = int(line.split()[1])
        elif line.startswith("VmFlags:") and size == RAM_KB:
            found.append(line.split()[1:])
    return found


why = tiny_guest.kvm_usable()
if why:
    print(f"SKIP: needs KVM ({why})")
    sys.exit(77)
with tempfile.TemporaryDirectory() as d:
    kernel = tiny_guest.write_guest(d, "spin", tiny_guest.SPIN)
    p = subprocess.Popen([MINIVMM, "--kernel", kernel, "--memory", "80", "--no-stdin"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    flags = []
    for _ in range(100):
        if p.poll() is not None:
            break
        flags = ram_mappings(p.pid)
        if flags:
            break
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
ok = len(flags) == 1 and "dd" in flags[0]
print(f"{'ok  ' if ok else 'FAIL'} guest RAM mapping ({RAM_KB} kB) VmFlags: {flags}")
if not ok:
    print("   log:", err.decode(errors="replace").strip()[-1500:])
print(f"{0 if ok else 1} failed")
sys.exit(0 if ok else 1)
