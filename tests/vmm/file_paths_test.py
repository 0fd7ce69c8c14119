#!/usr/bin/env python3
"""The minivmm binary refuses wrong file paths before it opens anything, with
a message naming the path and what is wrong, a documented exit code, and
every file it was given left byte for byte as it was:
- a log (serial log, a disk's write_log) naming a disk image, the kernel,
  the initrd, the config file or another log, however the path is spelled
  (symlink, hard link, ./): the log would have destroyed that file;
- a FIFO as kernel, initrd, serial log or config file: open(2) would block
  until a writer came, so each case runs under a timeout;
- a config that is a character device (/dev/zero would be read without end),
  a directory or larger than the 1 MiB limit; one that runs out of memory
  while parsed (exit 70 with a message, not an abort); a serial log in a directory
  that does not exist; one image given as two writable disks; an unknown
  --disk key (the message lists the keys, ro among them).
None of these needs /dev/kvm: every check comes before it is opened. The
kernel is a tiny guest that exits at once, so a binary that skipped the
checks would get as far as opening the logs where /dev/kvm works.
usage: file_paths_test.py MINIVMM"""
import os
import resource
import subprocess
import sys
import tempfile

from framework import tiny_guest

MINIVMM = sys.argv[1]
TIMEOUT_S = 20  # every case fails within a second; a hang is a failure
# mov dx, 0x4f0; xor eax, eax; out dx, eax; jmp $ (exit device: status 0)
EXIT_ZERO = bytes([0x66, 0xba, 0xf0, 0x04, 0x31, 0xc0, 0xef, 0xeb, 0xfe])
failures = []
originals = {}  # path -> content, written afresh before each case


def write(p, content):
    with open(p, "wb") as f:
        f.write(content)


def snapshot(paths):
    out = {}
    for p in paths:
        with open(p, "rb") as f:
            out[p] = f.read()
    return out


def run(name, args, expect_code, expect_text=(), victims=(), memory_limit=None):
    # Each case starts from intact files, whatever an earlier one did.
    for p, content in originals.items():
        write(p, content)
    before = snapshot(victims)
    try:
        def limit():
            if memory_limit:
                resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        p = subprocess.run([MINIVMM, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=TIMEOUT_S, preexec_fn=limit)
        code, out = p.returncode, p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        code, out = "timeout", (e.output or b"").decode(errors="replace")
    changed = [v for v, data in snapshot(victims).items() if data != before[v]]
    missing = [t for t in expect_text if t not in out]
    ok = code == expect_code and not missing and not changed
    print(f"{'ok  ' if ok else 'FAIL'} {name}: exit {code} (want {expect_code})")
    if not ok:
        if missing:
            print("   missing from the output:", missing)
        if changed:
            print("   changed:", changed)
        print("   output:", out.strip()[-800:])
        failures.append(name)


with tempfile.TemporaryDirectory() as d:
    def path(name, content=b""):
        p = os.path.join(d, name)
        write(p, content)
        originals[p] = content
        return p

    def fifo(name):
        p = os.path.join(d, name)
        os.mkfifo(p)
        return p

    kernel = path("exit0.elf", tiny_guest.elf(EXIT_ZERO))
    initrd = path("initrd.img", os.urandom(4096))
    disk_a = path("a.img", os.urandom(1 << 20))
    disk_b = path("b.img", os.urandom(1 << 20))
    config = path("vm.toml", f"[kernel]\npath = '{kernel}'\n".encode())
    link_a = os.path.join(d, "link-to-a.img")
    os.symlink(disk_a, link_a)
    hard_a = os.path.join(d, "hard-link-to-a.img")
    os.link(disk_a, hard_a)
    dot_a = os.path.join(d, ".", "a.img")
    all_inputs = [kernel, initrd, disk_a, disk_b, config]

    # Logs that would destroy another file.
    run("serial log is the disk image", ["--kernel", kernel, "--disk", disk_a, "--serial-log", disk_a],
        65, ["serial log '" + disk_a + "' is the same file as disk 0's image"], all_inputs)
    run("write log is its own disk image", ["--kernel", kernel, "--disk", f"{disk_a},write_log={disk_a}"],
        65, ["disk 0's write log '" + disk_a + "' is the same file as disk 0's image"], all_inputs)
    run("write log is another disk's image",
        ["--kernel", kernel, "--disk", f"{disk_a},write_log={disk_b}", "--disk", disk_b],
        65, ["disk 0's write log '" + disk_b + "' is the same file as disk 1's image"], all_inputs)
    run("serial log is the kernel", ["--kernel", kernel, "--serial-log", kernel],
        65, ["serial log '" + kernel + "' is the same file as kernel"], all_inputs)
    run("serial log is the initrd", ["--kernel", kernel, "--initrd", initrd, "--serial-log", initrd],
        65, ["same file as initrd"], all_inputs)
    run("serial log is the config file", ["-c", config, "--serial-log", config],
        65, ["same file as config file"], all_inputs)
    run("serial log is a symlink to the disk image",
        ["--kernel", kernel, "--disk", disk_a, "--serial-log", link_a],
        65, ["serial log '" + link_a + "' is the same file as disk 0's image '" + disk_a + "'"],
        all_inputs)
    run("write log is a hard link to the disk image",
        ["--kernel", kernel, "--disk", f"{disk_a},write_log={hard_a}"],
        65, ["is the same file as disk 0's image"], all_inputs)
    run("serial log is the disk image spelled with ./",
        ["--kernel", kernel, "--disk", disk_a, "--serial-log", dot_a],
        65, ["is the same file as disk 0's image"], all_inputs)
    existing_log = path("console.log", b"last run's console\n")
    run("write log is the serial log",
        ["--kernel", kernel, "--serial-log", existing_log, "--disk", f"{disk_a},write_log={existing_log}"],
        65, ["disk 0's write log", "is the same file as serial log"], all_inputs + [existing_log])
    new_log = os.path.join(d, "new.log")
    run("two logs name one new file",
        ["--kernel", kernel, "--serial-log", new_log, "--disk", f"{disk_a},write_log=" + os.path.join(d, ".", "new.log")],
        65, ["disk 0's write log", "is the same file as serial log"], all_inputs)
    if os.path.exists(new_log):
        print("FAIL two logs name one new file: the log was created")
        failures.append("new log created")

    # FIFOs: refused at once, never opened.
    run("kernel is a FIFO", ["--kernel", fifo("kernel.fifo")], 66,
        ["kernel '" + os.path.join(d, "kernel.fifo") + "' is a FIFO, not a regular file"])
    run("initrd is a FIFO", ["--kernel", kernel, "--initrd", fifo("initrd.fifo")], 66,
        ["initrd '" + os.path.join(d, "initrd.fifo") + "' is a FIFO, not a regular file"])
    run("serial log is a FIFO", ["--kernel", kernel, "--serial-log", fifo("log.fifo")], 65,
        ["serial log '" + os.path.join(d, "log.fifo") + "' is a FIFO, not a regular file"])
    run("config file is a FIFO", ["-c", fifo("config.fifo")], 65,
        ["config file '" + os.path.join(d, "config.fifo") + "' is a FIFO, not a regular file"])

    # Config files that are not a config.
    run("config file is /dev/zero", ["-c", "/dev/zero"], 65,
        ["config file '/dev/zero' is a character device, not a regular file"])
    run("config file is /dev/urandom", ["-c", "/dev/urandom"], 65,
        ["config file '/dev/urandom' is a character device"])
    big = os.path.join(d, "big.toml")
    write(big, b"")
    os.truncate(big, (1 << 20) + 1)
    run("config file over 1 MiB", ["-c", big], 65, ["1048577 bytes, over the 1048576-byte limit"])
    run("config file is a directory", ["-c", d], 65,
        ["config file '" + d + "' is a directory, not a regular file"])
    # Out of memory while the config is parsed (std::bad_alloc, no minivmm
    # error type) is an internal error with a message, not an abort. Under
    # the same address-space limit a small config gets as far as /dev/kvm.
    many_keys = os.path.join(d, "many-keys.toml")
    with open(many_keys, "w") as f:
        f.write("[x]\n")
        while f.tell() < (1 << 20) - 20:
            f.write(f"k{f.tell()} = 1\n")
    run("small config under a 16 MiB address-space limit", ["-c", config, "--kvm", os.path.join(d, "no-kvm")],
        69, ["no-kvm"], memory_limit=16 << 20)
    run("out of memory parsing the config", ["-c", many_keys], 70,
        ["minivmm: internal error: std::bad_alloc"], memory_limit=16 << 20)

    # Paths that cannot work, said plainly.
    run("serial log in a missing directory",
        ["--kernel", kernel, "--serial-log", os.path.join(d, "missing", "console.log")], 65,
        ["cannot create serial log", "directory '" + os.path.join(d, "missing") + "'",
         "No such file or directory"])
    run("one image as two disks", ["--kernel", kernel, "--disk", disk_a, "--disk", dot_a], 65,
        ["disk 1 '" + dot_a + "' is the same file as disk 0 '" + disk_a + "'"], all_inputs)
    run("unknown disk key lists ro", ["--kernel", kernel, "--disk", f"{disk_a},readonly=1"], 64,
        ["key 'readonly' is an unknown key", "read_only (or ro)", "write_log"])

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
