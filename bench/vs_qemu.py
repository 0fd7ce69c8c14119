#!/usr/bin/env python3
"""minivmm and QEMU side by side on the same /dev/kvm, the same guest.

The Debian guest (scripts/build-guest.sh --flavour distro,
scripts/build-rootfs.sh) boots under minivmm and under
`qemu-system-x86_64 -accel kvm -M microvm,acpi=off` (that kernel has virtio-mmio
but no PCI and no ACPI, so QEMU's disks are virtio-blk-device on virtio-mmio,
announced on the kernel command line like minivmm's). Same kernel, same command
line, same root image (read-only), same memory and vCPUs, one data disk per
cache mode (QEMU: -drive if=none,format=raw,cache=<mode>,aio=io_uring).
Runs are interleaved: minivmm, QEMU, minivmm, QEMU, ...

Per boot, measured from the host:
  spawn -> first KVM_RUN   minivmm: its "first KVM_RUN" log line's timestamp;
                           QEMU: the first kvm_vcpu_ioctl trace event with type
                           KVM_RUN (-trace kvm_vcpu_ioctl, log backend, turned
                           off over the monitor once seen)
  spawn -> first console byte, -> "minivmm-init: userspace up" (late init),
  -> bash prompt on ttyS0
  VMM memory beside guest RAM: Rss of every mapping in /proc/PID/smaps minus
  the Rss of the guest RAM mapping (the anonymous mapping of exactly the guest
  memory size), sampled once the workload is done (the guest idles at the prompt)
and in the guest, on each data disk (found by its serial), one fio run of three
jobs one after the other: 4 KiB random writes, random reads, random writes
with fdatasync every 16 writes (direct=1, psync: queue depth 1, time-based).

Prints load average and versions at start and end, one line per boot, then a
markdown table of medians with the ratio minivmm/QEMU per row.

usage: bench/vs_qemu.py MINIVMM KERNEL ROOT_IMAGE [--runs 5] [--seconds 2]
       [--memory 512] [--vcpus 2] [--disk-mib 64] [--qemu qemu-system-x86_64]
Needs /dev/kvm with hardware virtualization (scripts/with-kvm.sh --hw-virt;
scripts/bench-vs-qemu.sh does all of it).
"""
import argparse
import datetime
import os
import pty
import select
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tty

from framework.cache_modes import MODES

JOBS = [("write", "randwrite IOPS"), ("read", "randread IOPS"), ("flush", "randwrite+fdatasync/16 IOPS")]
CMDLINE = "console=ttyS0 quiet reboot=k panic=-1 root=/dev/vda rootfstype=ext4 ro init=/sbin/minivmm-init"
USERSPACE = re.compile(rb"minivmm-init: userspace up at ([\d.]+) s")
PROMPT = re.compile(rb"minivmm:\S*# ")  # Debian root .bashrc: PS1 \h:\w\$
DONE = re.compile(rb"\nVSQ-42-DONE")  # the typed command says VSQ-$((6*7))-DONE: its echo cannot match
KVM_RUN_IOCTL = 0xAE80  # _IO(KVMIO, 0x80)
FIRECRACKER = {"init": "< 125 ms", "mem": "< 5 MiB"}


# ---- parsing (unit-tested in tests/bench/vs_qemu_parse_test.py) ----

def parse_fio_terse(text):
    """fio --terse-version=3 lines (prefixed 'VSQ ') -> {(mode, job): (error, read_iops, write_iops)}.
    Job names are '<mode>-<job>'. Field numbers (1-based): 3 name, 5 error, 8 read IOPS, 49 write IOPS."""
    out = {}
    for m in re.finditer(r"VSQ (3;fio-[^\r\n]*)", text):
        f = m.group(1).split(";")
        if len(f) < 49:
            continue
        mode, _, job = f[2].rpartition("-")
        out[(mode, job)] = (int(f[4]), float(f[7]), float(f[48]))
    return out


def parse_smaps(text, guest_bytes):
    """(total Rss, guest RAM Rss) in KiB from /proc/PID/smaps. Guest RAM: the anonymous
    mapping(s) whose Size is exactly the guest memory (minivmm and QEMU both map it as one
    anonymous VMA of that size for guests up to 3 GiB)."""
    total = guest = 0
    size = None
    anon = False
    header = re.compile(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$")
    for line in text.splitlines():
        h = header.match(line)
        if h:
            path = h.group(1).strip()
            anon = path == "" or path.startswith("[anon")
            size = None
            continue
        if line.startswith("Size:"):
            size = int(line.split()[1])
        elif line.startswith("Rss:"):
            rss = int(line.split()[1])
            total += rss
            if anon and size == guest_bytes // 1024:
                guest += rss
    return total, guest


def parse_minivmm_first_run(log, tz=None):
    """Epoch seconds of minivmm's 'first KVM_RUN' log line (spdlog local time, ms), or None."""
    m = re.search(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) \S+ first KVM_RUN", log, re.M)
    if not m:
        return None
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
    return t.replace(tzinfo=tz).timestamp() if tz else time.mktime(t.timetuple()) + t.microsecond / 1e6


def parse_qemu_first_run(trace):
    """Epoch seconds of the first kvm_vcpu_ioctl trace event with type KVM_RUN (log backend
    with -msg timestamp=on: 'PID@SEC.USEC:kvm_vcpu_ioctl cpu_index N, type 0xae80, arg ...')."""
    for m in re.finditer(r"^\d+@(\d+)\.(\d{6}):kvm_vcpu_ioctl cpu_index \d+, type 0x([0-9a-f]+)", trace, re.M):
        if int(m.group(3), 16) == KVM_RUN_IOCTL:
            return int(m.group(1)) + int(m.group(2)) / 1e6
    return None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits):
    return "n/a" if v is None else f"{v:.{digits}f}"


def table(rows, samples):
    """rows: [(label, unit digits, [minivmm values], [qemu values], reference)] -> markdown."""
    out = ["| row | minivmm | QEMU | minivmm/QEMU | Firecracker (published, hardware) |",
           "|---|---:|---:|---:|---|"]
    for label, digits, ours, theirs, ref in rows:
        a, b = median(ours), median(theirs)
        ratio = f"{a / b:.2f}" if a is not None and b else "n/a"
        na = len([v for v in ours if v is not None])
        nb = len([v for v in theirs if v is not None])
        note = "" if na == nb == samples else f" (n={na}/{nb})"
        out.append(f"| {label}{note} | {fmt(a, digits)} | {fmt(b, digits)} | {ratio} | {ref} |")
    return "\n".join(out)


# ---- running ----

def guest_workload(seconds, disk_mib):
    """One shell line for bash on ttyS0: fio per disk, terse lines prefixed 'VSQ '."""
    return ("for m in " + " ".join(MODES) + "; do s=$(grep -lx vsq-$m /sys/block/vd*/serial); "
            "s=${s%/serial}; fio --output-format=terse --terse-version=3 --filename=/dev/${s##*/} "
            f"--direct=1 --ioengine=psync --bs=4k --size={disk_mib}M --runtime={seconds} --time_based "
            "--randrepeat=0 --stonewall --name=$m-write --rw=randwrite --name=$m-read --rw=randread "
            "--name=$m-flush --rw=randwrite --fdatasync=16 2>&1 | sed 's/^/VSQ /'; done; "
            "echo VSQ-$((6*7))-DONE\n")


class Boot:
    """One VMM process on a fresh pseudo-terminal in raw mode (its stdin and stdout, as for a
    person at a terminal: both VMMs then write console bytes unbuffered): console bytes with
    arrival times, typed input, smaps."""

    def __init__(self, cmd, log_path, console_path=None):
        self.cmd = cmd
        self.buf = b""
        self.first_byte = None
        self.lock = threading.Condition()
        self.log = open(log_path, "wb")
        # Written as bytes arrive, so a boot that wedges or is killed still leaves its console.
        self.console = open(console_path, "wb") if console_path else None
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        os.set_blocking(self.master, False)  # type() waits with a deadline, never forever
        self.t0_wall = time.time()
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=self.log)
        os.close(slave)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                select.select([self.master], [], [])
                data = os.read(self.master, 65536)
            except BlockingIOError:
                continue
            except (OSError, ValueError):  # EIO: every slave fd closed, the VMM has gone
                data = b""
            if not data:
                break
            if self.console:
                self.console.write(data)
                self.console.flush()
            with self.lock:
                if self.first_byte is None:
                    self.first_byte = time.monotonic() - self.t0
                self.buf += data
                self.lock.notify_all()
        with self.lock:
            self.lock.notify_all()

    def wait_for(self, rx, timeout, start=0):
        """Seconds since spawn when rx first matched the console (searching from offset start)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                m = rx.search(self.buf, start)
                if m:
                    return time.monotonic() - self.t0, m
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    tail = self.buf[-800:].decode(errors="replace")
                    raise RuntimeError(f"no {rx.pattern!r} within {timeout}s (exit {self.proc.poll()}); "
                                       f"console tail:\n{tail}")
                self.lock.wait(min(left, 1))

    def type(self, text, timeout=30):
        """Types text; raises if the VMM stops reading its input (a wedged guest fills the pty)."""
        data = text.encode()
        deadline = time.monotonic() + timeout
        while data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"the VMM read no input for {timeout}s ({len(data)} bytes not typed)")
            _, writable, _ = select.select([], [self.master], [], left)
            if writable:
                try:
                    data = data[os.write(self.master, data):]
                except BlockingIOError:
                    pass

    def smaps(self):
        with open(f"/proc/{self.proc.pid}/smaps") as f:
            return f.read()

    def finish(self, timeout=10):
        """Leaves the shell (the guest resets); stops the VMM if it is still running after timeout."""
        try:
            self.type("exit\n", timeout=5)
        except (BrokenPipeError, OSError, RuntimeError):
            pass
        try:
            rc = self.proc.wait(timeout=timeout)
            how = "exited"
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                rc = self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
            how = "stopped with SIGTERM after the guest's reset did not end it"
        self.reader.join(timeout=5)
        os.close(self.master)
        self.log.close()
        if self.console:
            self.console.close()
        return rc, how


def minivmm_cmd(args, images):
    cmd = [args.minivmm, "--kernel", args.kernel, "--memory", str(args.memory), "--vcpus", str(args.vcpus),
           "--cmdline", CMDLINE, "--disk", f"{args.image},cache=writeback,ro,serial=debian-root"]
    for mode, path in zip(MODES, images):
        cmd += ["--disk", f"{path},cache={mode},serial=vsq-{mode}"]
    return cmd


def qemu_cmd(args, images, trace_path, monitor_path):
    cmd = [args.qemu, "-accel", "kvm", "-cpu", "host", "-M", "microvm,acpi=off", "-m", str(args.memory),
           "-smp", str(args.vcpus), "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
           "-serial", "stdio", "-monitor", f"unix:{monitor_path},server=on,wait=off",
           "-msg", "timestamp=on", "-trace", "kvm_vcpu_ioctl", "-D", trace_path,
           "-kernel", args.kernel, "-append", CMDLINE,
           "-drive", f"file={args.image},if=none,id=root,format=raw,readonly=on,cache=writeback,aio=io_uring",
           "-device", "virtio-blk-device,drive=root,serial=debian-root"]
    for i, (mode, path) in enumerate(zip(MODES, images)):
        cmd += ["-drive", f"file={path},if=none,id=d{i},format=raw,cache={mode},aio=io_uring",
                "-device", f"virtio-blk-device,drive=d{i},serial=vsq-{mode}"]
    return cmd


def qemu_trace_off(trace_path, monitor_path, stop, found):
    """Waits for the first KVM_RUN in QEMU's trace, then turns the event off over the monitor
    (every KVM_RUN would otherwise write a line)."""
    while not stop.is_set():
        try:
            with open(trace_path) as f:
                t = parse_qemu_first_run(f.read())
        except FileNotFoundError:
            t = None
        if t is not None:
            found.append(t)
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(monitor_path)
                    s.sendall(b"trace-event kvm_vcpu_ioctl off\n")
                    time.sleep(0.2)
            except OSError as e:
                print(f"  (could not turn the trace off: {e})", flush=True)
            return
        time.sleep(0.02)


def one_boot(vmm, args, images, tmp, n):
    # With --log-dir the VMM's stderr, QEMU's trace and the console are written there as they
    # come (the console by Boot's reader), so a wedged boot leaves them too.
    where = args.log_dir or tmp
    log_path = os.path.join(where, f"{vmm}-{n}.log")
    trace_path = os.path.join(where, f"qemu-{n}.trace")
    console_path = os.path.join(args.log_dir, f"{vmm}-{n}.console") if args.log_dir else None
    monitor_path = os.path.join(tmp, f"qemu-{n}.mon")
    cmd = minivmm_cmd(args, images) if vmm == "minivmm" else qemu_cmd(args, images, trace_path, monitor_path)
    if n == 1:
        print("+ " + " ".join(cmd), flush=True)
    stop, found = threading.Event(), []
    boot = Boot(cmd, log_path, console_path)
    if vmm == "qemu":
        threading.Thread(target=qemu_trace_off, args=(trace_path, monitor_path, stop, found), daemon=True).start()
    r = {}
    try:
        r["init_s"], m = boot.wait_for(USERSPACE, args.timeout)
        r["guest_uptime_s"] = float(m.group(1))
        r["prompt_s"], m = boot.wait_for(PROMPT, args.timeout, m.end())
        after = len(boot.buf)
        t = time.monotonic()
        boot.type(guest_workload(args.seconds, args.disk_mib))
        _, done = boot.wait_for(DONE, args.timeout, after)
        r["workload_s"] = time.monotonic() - t
        total, guest = parse_smaps(boot.smaps(), args.memory << 20)
        r["rss_mib"], r["guest_rss_mib"] = total / 1024, guest / 1024
        r["overhead_mib"] = (total - guest) / 1024 if guest else None
        console = boot.buf[after:done.start()].decode(errors="replace").replace("\r", "")
        r["fio"] = parse_fio_terse(console)
        for line in console.splitlines():
            if line.startswith("VSQ ") and not line.startswith("VSQ 3;"):
                print(f"  guest: {line[4:]}", flush=True)
    finally:
        stop.set()
        rc, how = boot.finish()
    r["first_byte_ms"] = boot.first_byte * 1000 if boot.first_byte is not None else None
    if vmm == "minivmm":
        with open(log_path, errors="replace") as f:
            t = parse_minivmm_first_run(f.read())
    else:
        if not found and os.path.exists(trace_path):
            with open(trace_path, errors="replace") as f:
                found.append(parse_qemu_first_run(f.read()))
        t = found[0] if found else None
    r["first_run_ms"] = (t - boot.t0_wall) * 1000 if t is not None else None
    r["rc"], r["how"] = rc, how
    return r


def versions(args):
    qemu = subprocess.run([args.qemu, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    here = os.path.dirname(os.path.abspath(__file__))
    rev = subprocess.run(["git", "-C", here, "describe", "--always", "--dirty"], capture_output=True,
                         text=True).stdout.strip() or "unknown"
    kver = "unknown"
    try:
        with open(args.kernel, "rb") as f:
            m = re.search(rb"Linux version (\S+)", f.read())
            kver = m.group(1).decode() if m else kver
    except OSError:
        pass
    return (f"minivmm {rev} ({args.minivmm}); {qemu}; host kernel {os.uname().release}; "
            f"guest kernel {kver} ({args.kernel}); root {args.image}")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("minivmm")
    ap.add_argument("kernel")
    ap.add_argument("image")
    ap.add_argument("--runs", type=int, default=5, help="boots per VMM, interleaved (default 5)")
    ap.add_argument("--seconds", type=float, default=2, help="fio runtime per job (default 2)")
    ap.add_argument("--memory", type=int, default=512, help="guest MiB (default 512)")
    ap.add_argument("--vcpus", type=int, default=2)
    ap.add_argument("--disk-mib", type=int, default=64, help="size of each data disk (default 64)")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--log-dir", help="keep each boot's console, VMM log and QEMU trace here")
    ap.add_argument("--timeout", type=float, default=300, help="per wait inside one boot, seconds (default 300)")
    args = ap.parse_args()
    for path, how in ((args.minivmm, "scripts/build.sh"), (args.kernel, "scripts/build-guest.sh --flavour distro"),
                      (args.image, "scripts/build-rootfs.sh")):
        if not os.path.exists(path):
            print(f"vs_qemu: {path} missing ({how})", file=sys.stderr)
            return 1
    if not shutil.which(args.qemu):
        print(f"vs_qemu: {args.qemu} not found (apt-get install qemu-system-x86)", file=sys.stderr)
        return 1
    if args.log_dir:
        os.makedirs(args.log_dir, exist_ok=True)
    started = time.monotonic()
    print(f"start: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%MZ}  load {loadavg()}  "
          f"{os.cpu_count()} CPUs", flush=True)
    print(f"versions: {versions(args)}", flush=True)
    print(f"guest: {args.memory} MiB, {args.vcpus} vCPUs; data disks {args.disk_mib} MiB raw, one per mode; "
          f"fio {args.seconds:g} s per job; {args.runs} runs per VMM, interleaved", flush=True)

    results = {"minivmm": [], "qemu": []}
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR") or "/var/tmp", prefix="vs-qemu-") as tmp:
        images = []
        for mode in MODES:  # written, not sparse: reads hit allocated blocks in every run
            path = os.path.join(tmp, f"{mode}.img")
            subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={args.disk_mib}",
                            "conv=fsync", "status=none"], check=True)
            images.append(path)
        for n in range(1, args.runs + 1):
            for vmm in ("minivmm", "qemu"):
                try:
                    r = one_boot(vmm, args, images, tmp, n)
                except RuntimeError as e:
                    print(f"{vmm} run {n}: FAILED: {e}", flush=True)
                    continue
                results[vmm].append(r)
                fio = r["fio"]
                errs = [k for k, v in fio.items() if v[0] != 0]
                print(f"{vmm} run {n}: first KVM_RUN {fmt(r['first_run_ms'], 0)} ms, first byte "
                      f"{fmt(r['first_byte_ms'], 0)} ms, init {r['init_s']:.2f} s (guest uptime "
                      f"{r['guest_uptime_s']:.2f}), prompt {r['prompt_s']:.2f} s, RSS {r['rss_mib']:.1f} MiB "
                      f"(guest RAM {r['guest_rss_mib']:.1f}, VMM {fmt(r['overhead_mib'], 1)}), fio jobs "
                      f"{len(fio)}/15{' errors ' + str(errs) if errs else ''}, workload {r['workload_s']:.1f} s; "
                      f"{r['how']} {r['rc']}", flush=True)

    def col(vmm, key):
        return [r.get(key) for r in results[vmm]]

    def fio_col(vmm, mode, job):
        vals = []
        for r in results[vmm]:
            v = r["fio"].get((mode, job))
            vals.append(None if v is None or v[0] else (v[1] if job == "read" else v[2]))
        return vals

    rows = [("spawn -> first KVM_RUN (ms)", 0, col("minivmm", "first_run_ms"), col("qemu", "first_run_ms"), ""),
            ("spawn -> first console byte (ms)", 0, col("minivmm", "first_byte_ms"), col("qemu", "first_byte_ms"), ""),
            ("spawn -> late init, `userspace up` (ms)", 0, [v and v * 1000 for v in col("minivmm", "init_s")],
             [v and v * 1000 for v in col("qemu", "init_s")], FIRECRACKER["init"] + " (start to init)"),
            ("guest uptime at late init (ms)", 0, [v and v * 1000 for v in col("minivmm", "guest_uptime_s")],
             [v and v * 1000 for v in col("qemu", "guest_uptime_s")], ""),
            ("spawn -> shell prompt (ms)", 0, [v and v * 1000 for v in col("minivmm", "prompt_s")],
             [v and v * 1000 for v in col("qemu", "prompt_s")], ""),
            ("VMM memory beside guest RAM: RSS - guest RAM Rss (MiB)", 1, col("minivmm", "overhead_mib"),
             col("qemu", "overhead_mib"), FIRECRACKER["mem"]),
            ("guest RAM touched (Rss of its mapping, MiB)", 1, col("minivmm", "guest_rss_mib"),
             col("qemu", "guest_rss_mib"), "")]
    for mode in MODES:
        for job, label in JOBS:
            rows.append((f"{mode}: {label}", 0, fio_col("minivmm", mode, job), fio_col("qemu", mode, job), ""))
    print()
    print(f"Medians of {args.runs} interleaved runs per VMM; guest {args.memory} MiB, {args.vcpus} vCPUs; "
          f"fio direct=1 psync QD1 4 KiB, {args.seconds:g} s per job. Under TCG-emulated nested KVM all times "
          f"are inflated: compare ratios (minivmm/QEMU: < 1 is better for times and memory, > 1 for IOPS), "
          f"not absolutes; Firecracker's figures are from hardware.")
    print()
    print(table(rows, args.runs))
    print()
    print(f"end: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%MZ}  load {loadavg()}  "
          f"ran {time.monotonic() - started:.0f} s", flush=True)
    print(f"versions: {versions(args)}", flush=True)
    ok = len(results["minivmm"]) == len(results["qemu"]) == args.runs
    return 0 if ok else 1


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
