#!/usr/bin/env python3
"""Run one command on a real /dev/kvm, one level down (docs/nested-kvm.md).

The sandbox is Debian's own kernel (linux-image-amd64, downloaded and unpacked,
never installed) under QEMU's software emulator with emulated AMD-V
(`-cpu max`), where kvm_amd gives a /dev/kvm with hardware-virtualization
semantics. The host's / is shared read-only over 9p and the command runs
chrooted into it, so the host's tools and paths work unchanged; the directories
it must write (its repository, the build tree, the cache, $TMPDIR, --rw) are
shared read-write over the same paths. /var/tmp inside is a scratch ext4 on
virtio-blk (real O_DIRECT, fdatasync, loop devices).

A test harness, not an isolation boundary: the command runs as root inside and
can change anything in the read-write directories, and QEMU runs with the
caller's rights (root, on the project's machines).

usage: nested_kvm.py [options] [--] COMMAND [ARG...]
       nested_kvm.py --build-only

Exit status: the command's own status, exactly; otherwise
  124  the command ran past --timeout (it was stopped, then the sandbox)
  125  infrastructure failure: the sandbox could not start, froze, or died
       without reporting a status (stderr says which, with the console tail)
  128+N  the runner itself was stopped by signal N before the command reported

Cache: $MINIVMM_CACHE (default ~/.cache/minivmm)/nested/<key>/, keyed by the
versions of the Debian packages it is built from and by this program's inputs.
"""
import argparse
import ctypes
import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
INIT_SCRIPT = HERE / "nested-kvm-init.sh"
# Modules the sandbox needs (with their dependencies, resolved by kmod):
# 9p for the host's tree, virtio-blk + ext4 for the scratch disk, loop for
# tests that mount images, kvm_amd for /dev/kvm.
MODULES = ["virtio_pci", "9pnet_virtio", "9p", "virtio_blk", "ext4", "loop", "kvm_amd"]
QEMU = os.environ.get("MINIVMM_NESTED_QEMU", "qemu-system-x86_64")
# Debian package that provides each host tool the sandbox needs.
HOST_TOOLS = {
    QEMU: "qemu-system-x86",
    "busybox": "busybox-static",
    "depmod": "kmod",
    "modprobe": "kmod",
    "cpio": "cpio",
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
    "mkfs.ext4": "e2fsprogs",
}
EXIT_TIMEOUT = 124
EXIT_INFRA = 125
# Paths that are not the host's inside the sandbox: /var/tmp is the scratch
# disk, /proc, /sys and /dev are the sandbox kernel's. A read-write export
# there would be hidden by those mounts.
NOT_SHARED = ("/var/tmp", "/proc", "/sys", "/dev")


class InfraError(Exception):
    """The sandbox could not run the command (not the command's failure)."""


def log(msg):
    print(f"nested-kvm: {msg}", file=sys.stderr, flush=True)


def cache_root(env=os.environ):
    base = env.get("MINIVMM_CACHE") or os.path.join(
        env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "minivmm")
    return Path(base).resolve() / "nested"


def run_quiet(cmd, what, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise InfraError(f"{what} failed ({' '.join(cmd)}): {r.stderr.strip()[-800:]}")
    return r.stdout


def tool_path(name):
    for d in (os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]):
        p = os.path.join(d, name)
        if d and os.access(p, os.X_OK):
            return p
    return None


def check_host_tools():
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if tool_path(tool) is None})
    if missing:
        raise InfraError("missing Debian package(s): " + " ".join(missing) +
                         " -- run scripts/install-deps.sh (or apt-get install -y " + " ".join(missing) + ")")
    busybox = tool_path("busybox")
    if b"INTERP" in subprocess.run(["readelf", "-l", busybox], capture_output=True).stdout:
        raise InfraError(f"{busybox} is dynamically linked: install busybox-static")


def package_version(pkg):
    out = run_quiet(["dpkg-query", "-W", "-f=${Version}", pkg], f"dpkg-query {pkg}")
    return out.strip()


def kernel_package():
    """linux-image-amd64's kernel package, version and the archive's SHA256 of
    its .deb, remembered until apt's package lists change (apt-cache takes
    seconds on a loaded machine)."""
    lists = Path("/var/lib/apt/lists")
    stamp = f"{lists.stat().st_mtime_ns if lists.exists() else 0}"
    memo = cache_root() / "resolved-kernel"
    try:
        saved_stamp, kpkg, kver, sha256 = memo.read_text().split()
        if saved_stamp == stamp:
            return kpkg, kver, sha256
    except (OSError, ValueError):
        pass
    kpkg, kver = resolve_kernel_package()
    sha256 = archive_sha256(
        run_quiet(["apt-cache", "show", "--no-all-versions", f"{kpkg}={kver}"], f"apt-cache show {kpkg}={kver}"),
        f"{kpkg} {kver}")
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(f"{stamp} {kpkg} {kver} {sha256}\n")
    return kpkg, kver, sha256


def archive_sha256(record, what):
    """The SHA256 field of an apt-cache show record: the .deb's hash in the
    archive's Packages index, which its signed Release file covers."""
    for line in record.splitlines():
        if line.startswith("SHA256:"):
            value = line.split(":", 1)[1].strip().lower()
            if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
                return value
            raise InfraError(f"apt's package lists give {what} a malformed SHA256 {value!r}")
    raise InfraError(f"apt's package lists have no SHA256 for {what}: cannot check its .deb "
                     "(run apt-get update)")


def resolve_kernel_package():
    """linux-image-amd64 depends on exactly one versioned image package."""
    out = run_quiet(["apt-cache", "depends", "linux-image-amd64"], "apt-cache depends linux-image-amd64")
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            name = line.split()[1]
            policy = run_quiet(["apt-cache", "policy", name], f"apt-cache policy {name}")
            for p in policy.splitlines():
                if p.strip().startswith("Candidate:"):
                    return name, p.split()[1]
    raise InfraError("cannot resolve linux-image-amd64 to a kernel package (apt-get update?)")


def sandbox_key(kpkg, kver, deb_sha256):
    h = hashlib.sha256()
    for item in (kpkg, kver, deb_sha256, package_version("busybox-static"), package_version("kmod"),
                 INIT_SCRIPT.read_bytes(), " ".join(MODULES)):
        h.update(item if isinstance(item, bytes) else item.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def private_dir(path):
    """A directory only its owner can use (0700). Whoever can write the .deb
    cache chooses the kernel the sandbox boots; an existing directory with
    looser permissions (earlier versions made it 0777) is tightened."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.stat()
    if st.st_uid != os.geteuid():
        raise InfraError(f"{path} belongs to uid {st.st_uid}, not to this user: "
                         "set MINIVMM_CACHE to a directory of your own")
    if st.st_mode & 0o7777 != 0o700:
        os.chmod(path, 0o700)
    return path


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verified_deb(debs, pattern, expected_sha256, download):
    """The .deb in `debs` matching `pattern` whose SHA256 is the archive's.
    A cached file that does not match (corrupt, truncated, replaced) is
    deleted and downloaded again with download(); a download that still does
    not match is refused."""
    private_dir(debs)
    for deb in sorted(debs.glob(pattern)):
        got = file_sha256(deb)
        if got == expected_sha256:
            return deb
        log(f"cached {deb} has SHA256 {got}, the archive says {expected_sha256}: downloading it again")
        deb.unlink()
    download()
    found = sorted(debs.glob(pattern))
    if not found:
        raise InfraError(f"the download left no {pattern} in {debs}")
    got = file_sha256(found[0])
    if got != expected_sha256:
        found[0].unlink()
        raise InfraError(f"downloaded {found[0].name} has SHA256 {got}, but apt's package lists say "
                         f"{expected_sha256}: refusing to use it (a corrupt download or a stale list: "
                         "run apt-get update and try again)")
    return found[0]


def download_kernel(debs, kpkg, kver, sha256):
    def download():
        log(f"downloading {kpkg} {kver} (Debian package, unpacked into the cache, never installed)")
        # As root apt would hand the download to its _apt user, which cannot
        # write the private cache; it then warns and downloads as root. Say so
        # up front: the file is checked against the archive's SHA256 anyway.
        sandbox = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
        run_quiet(["apt-get", "download", "-q", *sandbox, f"{kpkg}={kver}"], f"apt-get download {kpkg}",
                  cwd=debs)

    return verified_deb(debs, f"{kpkg}_{kver.replace(':', '%3a')}_*.deb", sha256, download)


def module_order(tree, release):
    """insmod order for MODULES and everything they depend on (modules.dep)."""
    order = []
    for mod in MODULES:
        out = run_quiet(["modprobe", "-d", str(tree), "-S", release, "--show-depends", mod],
                        f"modprobe --show-depends {mod}")
        for line in out.splitlines():
            parts = line.split()
            if parts[:1] == ["insmod"] and parts[1] not in order:
                order.append(parts[1])
    return order


def build_initramfs(tree, release, out):
    stage = Path(tempfile.mkdtemp(prefix="nested-initramfs-"))
    try:
        for d in ("bin", "dev", "proc", "sys", "lib/modules", "host"):
            (stage / d).mkdir(parents=True, exist_ok=True)
        shutil.copy2(tool_path("busybox"), stage / "bin/busybox")
        shutil.copy2(INIT_SCRIPT, stage / "init")
        os.chmod(stage / "init", 0o755)
        names = []
        for path in module_order(tree, release):
            name = os.path.basename(path)
            shutil.copy2(path, stage / "lib/modules" / name)
            names.append(name)
        (stage / "lib/modules/order").write_text("\n".join(names) + "\n")
        files = subprocess.run(["find", ".", "-mindepth", "1"], cwd=stage, capture_output=True,
                               text=True, check=True).stdout
        files = "\n".join(sorted(files.split())) + "\n"
        with open(out, "wb") as f:
            cpio = subprocess.Popen(["cpio", "-o", "-H", "newc", "--owner", "0:0", "--quiet"],
                                    cwd=stage, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            gz = subprocess.Popen(["gzip", "-6"], stdin=cpio.stdout, stdout=f)
            cpio.stdout.close()
            cpio.communicate(files.encode())
            if cpio.wait() != 0 or gz.wait() != 0:
                raise InfraError("cpio/gzip of the sandbox initramfs failed")
        return names
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def unpacked_kernel(root, kpkg, kver, sha256):
    """The kernel package unpacked once per version (depmod run on it): the
    initramfs can then be rebuilt without unpacking 70 MB again. A tree not
    recorded as unpacked from a .deb with the archive's SHA256 is redone."""
    tree = root / "kernels" / f"{kpkg}_{kver}"
    if (tree / ".complete").exists() and (tree / ".deb-sha256").exists() and \
            (tree / ".deb-sha256").read_text().strip() == sha256:
        return tree
    deb = download_kernel(root / "debs", kpkg, kver, sha256)
    log(f"unpacking {deb.name}")
    partial = tree.with_name(tree.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    run_quiet(["dpkg-deb", "-x", str(deb), str(partial)], "dpkg-deb -x")
    releases = os.listdir(partial / "lib/modules")
    if len(releases) != 1:
        raise InfraError(f"{deb.name} holds {len(releases)} module trees, expected 1")
    run_quiet(["depmod", "-b", str(partial), releases[0]], "depmod")
    (partial / ".deb-sha256").write_text(sha256 + "\n")
    (partial / ".complete").write_text(releases[0] + "\n")
    shutil.rmtree(tree, ignore_errors=True)
    os.rename(partial, tree)
    for old in (root / "kernels").iterdir():  # one kernel version is kept
        if old != tree:
            shutil.rmtree(old, ignore_errors=True)
    return tree


def ensure_sandbox():
    """Build (once per key) the sandbox kernel + initramfs; return its directory."""
    check_host_tools()
    root = cache_root()
    kpkg, kver, sha256 = kernel_package()
    key = sandbox_key(kpkg, kver, sha256)
    out = root / key
    if (out / "initramfs.cpio.gz").exists():
        return out
    start = time.monotonic()
    log(f"building the sandbox into {out} ({kpkg} {kver}; later runs reuse it)")
    root.mkdir(parents=True, exist_ok=True)
    if root.stat().st_mode & 0o022:  # others could replace the kernel or initramfs it boots
        os.chmod(root, root.stat().st_mode & 0o755)
    tree = unpacked_kernel(root, kpkg, kver, sha256)
    release = (tree / ".complete").read_text().strip()
    work = Path(tempfile.mkdtemp(prefix="partial-", dir=root))
    try:
        shutil.copy2(tree / "boot" / f"vmlinuz-{release}", work / "vmlinuz")
        log(f"building the initramfs (busybox-static, modules of {release})")
        names = build_initramfs(tree, release, work / "initramfs.cpio.gz")
        (work / "info").write_text(f"kernel {kpkg} {kver} ({release})\nmodules {' '.join(names)}\n")
        os.rename(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for old in root.iterdir():  # earlier keys: nothing uses them any more
        if old.is_dir() and len(old.name) == 16 and old != out:
            shutil.rmtree(old, ignore_errors=True)
    log(f"sandbox built in {time.monotonic() - start:.1f}s")
    return out


def repository_of(path):
    """The top of the git work tree holding `path` (a .git directory or, in a
    linked work tree, a .git file), or None."""
    for d in (path, *path.parents):
        if (d / ".git").exists():
            return d
    return None


def writable_paths(cwd, env, extra=()):
    """The host directories the command may write, as real paths, none inside
    another: its repository (the cwd's git work tree, and the runner's own),
    $MINIVMM_BUILD_DIR, the cache ($MINIVMM_CACHE), $TMPDIR and `extra` (--rw).
    Everything else of the host's / is read-only inside. Paths that are not
    directories, /, or hidden inside by the sandbox's own mounts (NOT_SHARED)
    are left out."""
    cwd = Path(cwd)
    wanted = [HERE.parent, repository_of(cwd), cache_root(env).parent]
    for var in ("MINIVMM_BUILD_DIR", "TMPDIR"):
        if env.get(var):
            wanted.append(cwd / env[var])
    wanted += [cwd / p for p in extra]
    real = set()
    for p in wanted:
        if p is None or not p.is_dir():
            continue
        p = p.resolve()
        if can_share_rw(p):
            real.add(p)
    return sorted(p for p in real if not any(q in p.parents for q in real))


def can_share_rw(real):
    """Not /, and not where the sandbox's own mounts would hide it."""
    return real != Path("/") and not any(real == Path(n) or Path(n) in real.parents for n in NOT_SHARED)


def qemu_opt(value):
    """A value inside a QEMU -opt list, where a comma is written twice."""
    return str(value).replace(",", ",,")


# Variables that describe the outer shell or process, not the user's setup.
ENV_SKIP = {"PWD", "OLDPWD", "SHLVL", "_", "SHELLOPTS", "BASHOPTS", "PS1", "PS2", "PS4",
            "TERMCAP", "COLUMNS", "LINES"}


def write_command(run_dir, argv, cwd):
    env = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(os.environ.items())
                  if k not in ENV_SKIP and k.isidentifier() and not k.startswith("BASH_FUNC"))
    (run_dir / "cmd.sh").write_text(
        "# written by tools/nested_kvm.py; run inside the sandbox by its init\n" + env +
        "export MINIVMM_IN_NESTED_SANDBOX=1\n"
        # Written through to the host at once (uncached 9p); gone with the run dir.
        f"export MINIVMM_NESTED_RUN_DIR={shlex.quote(str(run_dir))}\n"
        # Temporary files on the scratch ext4, not on 9p (no FIFOs, no O_DIRECT there).
        "export TMPDIR=/var/tmp\n"
        f"echo $$ > {shlex.quote(str(run_dir / 'pid'))}\n"
        f"cd {shlex.quote(cwd)} || exit 125\n"
        f"exec {shlex.join(argv)}\n")


def set_pdeathsig():
    """QEMU dies with the runner even if the runner is SIGKILLed (prctl(2))."""
    os.setsid()
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def pump(path, sink):
    """Copy a FIFO to one of our streams as it arrives (the command's stdout or stderr)."""
    with open(path, "rb", buffering=0) as src:
        while True:
            chunk = src.read(65536)
            if not chunk:
                return
            sink.write(chunk)
            sink.flush()


def console_tail(run_dir, lines=25):
    try:
        text = (run_dir / "console.log").read_text(errors="replace").splitlines()
    except OSError:
        return "(no console log)"
    return "\n".join("  | " + line for line in text[-lines:]) or "  | (empty)"


def monitor_dump(run_dir):
    """Ask QEMU for every vCPU's registers: evidence for a frozen sandbox."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(run_dir / "monitor.sock"))
            s.sendall(b"info registers -a\n")
            data = b""
            s.settimeout(2)
            try:
                while True:  # until the monitor has been quiet for 2 s
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        break
                    data += chunk
            except socket.timeout:
                pass
        (run_dir / "freeze-registers.txt").write_bytes(data)
        return str(run_dir / "freeze-registers.txt")
    except OSError as e:
        return f"(monitor unavailable: {e})"


class Sandbox:
    """One boot of the sandbox running one command."""

    def __init__(self, image_dir, args, run_dir, scratch, rw_paths):
        self.args, self.run_dir, self.scratch = args, run_dir, scratch
        self.qemu_cmd = [
            QEMU, "-accel", f"tcg,thread={args.tcg_threads}", "-cpu", "max",
            "-smp", str(args.cpus), "-m", str(args.mem), "-machine", "q35",
            "-display", "none", "-nodefaults", "-no-user-config", "-no-reboot",
            "-kernel", str(image_dir / "vmlinuz"), "-initrd", str(image_dir / "initramfs.cpio.gz"),
            "-append", " ".join([
                "console=ttyS0", "loglevel=4", "panic=-1", "rdinit=/init",
                f"minivmm.run={run_dir}", f"minivmm.mkfs={1 if args.mkfs else 0}",
                f"minivmm.grace={args.grace}"]),
            "-serial", f"file:{run_dir}/console.log",
            "-chardev", f"file,id=out,path={run_dir}/out.fifo", "-serial", "chardev:out",
            "-chardev", f"file,id=err,path={run_dir}/err.fifo", "-serial", "chardev:err",
            "-serial", f"file:{run_dir}/heartbeat.log",
            "-monitor", f"unix:{run_dir}/monitor.sock,server,nowait",
            # The host's / read-only: QEMU refuses every write to it (and the
            # init mounts it ro), so only the exports below can change the host.
            "-virtfs", "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap",
            "-virtfs", f"local,path={qemu_opt(run_dir)},mount_tag=run,security_model=none",
            "-drive", f"file={qemu_opt(scratch)},if=virtio,format=raw,cache=unsafe,aio=threads",
        ]
        # The init mounts each read-write export over its own path (run_dir/mounts).
        mounts = ""
        for i, path in enumerate(rw_paths):
            if "\n" in str(path):
                raise InfraError(f"cannot share {str(path)!r} read-write: its name has a line break")
            self.qemu_cmd += ["-virtfs", f"local,path={qemu_opt(path)},mount_tag=rw{i},"
                              "security_model=none,multidevs=remap"]
            mounts += f"rw{i} {path}\n"
        (run_dir / "mounts").write_text(mounts)

    def run(self, stop_requested):
        """Returns the command's exit status; raises InfraError or TimeoutError."""
        for name in ("out.fifo", "err.fifo"):
            os.mkfifo(self.run_dir / name)
        pumps = [threading.Thread(target=pump, args=(self.run_dir / "out.fifo", sys.stdout.buffer), daemon=True),
                 threading.Thread(target=pump, args=(self.run_dir / "err.fifo", sys.stderr.buffer), daemon=True)]
        for t in pumps:
            t.start()
        qemu_log = open(self.run_dir / "qemu.log", "wb")
        qemu = subprocess.Popen(self.qemu_cmd, stdin=subprocess.DEVNULL, stdout=qemu_log,
                                stderr=subprocess.STDOUT, preexec_fn=set_pdeathsig)
        try:
            return self._watch(qemu, stop_requested)
        finally:
            if qemu.poll() is None:
                qemu.kill()
                qemu.wait()
            qemu_log.close()
            for t in pumps:
                t.join(timeout=5)

    def _watch(self, qemu, stop_requested):
        a = self.args
        beat_size, beat_time, stop_sent, reason = 0, time.monotonic(), None, None
        started = None  # when the init reported the command running (--timeout counts from there)
        while qemu.poll() is None:
            time.sleep(0.2)
            now = time.monotonic()
            hb = self.run_dir / "heartbeat.log"
            size = hb.stat().st_size if hb.exists() else 0
            if size != beat_size:
                beat_size, beat_time = size, now
            silence = now - beat_time
            limit = a.boot_allowance if beat_size == 0 else a.freeze_after
            if silence > limit and reason is None:
                # QEMU is killed after this without a sync inside, and needs
                # none: the host's / is read-only, and the read-write exports
                # are uncached, so every write() the command completed is in
                # the host's page cache already (docs/nested-kvm.md).
                regs = monitor_dump(self.run_dir)
                raise InfraError(
                    f"the sandbox froze: no heartbeat for {silence:.0f}s "
                    f"({'during boot' if beat_size == 0 else 'while the command ran'}); "
                    f"vCPU registers: {regs}; console tail:\n{console_tail(self.run_dir)}")
            if started is None and beat_size and b"started" in hb.read_bytes():
                started = now
            if reason is None and a.timeout and started is not None and now - started > a.timeout:
                reason = "timeout"
            if reason is None and stop_requested():
                reason = "signal"
            if reason and stop_sent is None:
                if reason == "timeout":
                    log(f"timeout: the command ran past {a.timeout}s; stopping it")
                (self.run_dir / "stop").touch()
                stop_sent = now
            if stop_sent is not None and now - stop_sent > a.grace + 15:
                log("the sandbox did not stop in time; killing QEMU")
                qemu.kill()
        if reason == "timeout":
            raise TimeoutError()
        rc = command_status(self.run_dir)
        if rc is not None:
            return rc
        qemu_msg = (self.run_dir / "qemu.log").read_text(errors="replace").strip()[-600:]
        raise InfraError(f"the sandbox ended (QEMU exit {qemu.returncode}) without a status"
                         f"{': ' + qemu_msg if qemu_msg else ''}; console tail:\n{console_tail(self.run_dir)}")


def command_status(run_dir):
    """The command's exit status from the run directory, None if it left none.

    An exit 125 beside an infra_error file is the command saying the sandbox
    itself failed under it (a vCPU stuck in guest mode: tests/framework/vm_stall.py), so
    it raises InfraError and the run is retried on a fresh boot; a plain 125
    is the command's own status. infra_error without a status is the init's
    report of a failure before the command ran.
    """
    status = run_dir / "status"
    infra = run_dir / "infra_error"
    if status.exists():
        rc = int(status.read_text().strip() or str(EXIT_INFRA))
        if rc == EXIT_INFRA and infra.exists():
            raise InfraError(infra.read_text().strip())
        return rc
    if infra.exists():
        raise InfraError(infra.read_text().strip())
    return None


def make_scratch(args, run_dir):
    if args.scratch:
        path = Path(args.scratch).resolve()
        if not path.exists():
            args.mkfs = True
            with open(path, "wb") as f:
                f.truncate(args.scratch_gib << 30)
        return path
    path = run_dir / "scratch.img"
    with open(path, "wb") as f:
        f.truncate(args.scratch_gib << 30)  # sparse: costs what the command writes
    args.mkfs = True
    return path


def run_once(image_dir, args, stop_requested):
    runs = cache_root() / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=runs))
    if any(c.isspace() for c in str(run_dir)):
        raise InfraError(f"the cache path {run_dir} has white space; set MINIVMM_CACHE")
    keep = False
    try:
        write_command(run_dir, args.command, os.getcwd())
        scratch = make_scratch(args, run_dir)
        rw_paths = writable_paths(Path.cwd(), os.environ, args.rw)
        return Sandbox(image_dir, args, run_dir, scratch, rw_paths).run(stop_requested)
    except InfraError:
        keep = True
        log(f"run directory kept for inspection: {run_dir}")
        raise
    finally:
        if not keep and not args.keep_run:
            shutil.rmtree(run_dir, ignore_errors=True)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="scripts/nested-kvm.sh", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    ap.add_argument("--timeout", type=float, default=0,
                    help="stop the command after it ran this many seconds (sandbox boot not counted; 0: none)")
    ap.add_argument("--mem", type=int, default=int(os.environ.get("MINIVMM_NESTED_MEM_MIB", 6144)),
                    help="sandbox RAM in MiB (default 6144, env MINIVMM_NESTED_MEM_MIB)")
    # One CPU by default: with two, guests under both minivmm and QEMU hung or
    # triple-faulted in 5 of 14 boots, with one in 0 of 10 (docs/nested-kvm.md).
    ap.add_argument("--cpus", type=int, default=int(os.environ.get("MINIVMM_NESTED_CPUS", 1)),
                    help="sandbox CPUs (default 1, env MINIVMM_NESTED_CPUS)")
    ap.add_argument("--tcg-threads", choices=("multi", "single"),
                    default=os.environ.get("MINIVMM_NESTED_TCG_THREADS", "multi"),
                    help="QEMU's TCG: one host thread per sandbox CPU (multi, default) or one for all "
                         "(single); env MINIVMM_NESTED_TCG_THREADS")
    ap.add_argument("--scratch", help="scratch disk image to use and keep (created if missing); default: a fresh one per run")
    ap.add_argument("--scratch-gib", type=int, default=16, help="size of a new scratch disk (sparse)")
    ap.add_argument("--grace", type=int, default=20, help="seconds between SIGTERM and SIGKILL when stopping the command")
    ap.add_argument("--freeze-after", type=float, default=120, help="seconds without a heartbeat that mean a frozen sandbox")
    ap.add_argument("--boot-allowance", type=float, default=120, help="seconds allowed for the first heartbeat")
    ap.add_argument("--infra-retries", type=int, default=0,
                    help="after an infrastructure failure, run again on a fresh sandbox boot this many times")
    ap.add_argument("--rw", action="append", metavar="DIR",
                    default=[d for d in os.environ.get("MINIVMM_NESTED_RW", "").split(":") if d],
                    help="also share DIR read-write (repeatable; env MINIVMM_NESTED_RW, dirs separated by ':'; "
                         "the repository, $MINIVMM_BUILD_DIR, the cache and $TMPDIR always are; the rest of / "
                         "is read-only inside)")
    ap.add_argument("--keep-run", action="store_true", help="keep the run directory (console log, heartbeat)")
    ap.add_argument("--build-only", action="store_true", help="build the sandbox into the cache and exit")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command and not args.build_only:
        ap.error("no command given")
    for d in args.rw:
        real = Path(d).resolve()
        if not real.is_dir():
            ap.error(f"--rw {d}: not a directory")
        if not can_share_rw(real):
            ap.error(f"--rw {d}: / and {', '.join(NOT_SHARED)} cannot be shared read-write "
                     "(/var/tmp inside is the scratch disk; the others are the sandbox's own)")
    args.mkfs = False
    return args


def main(argv):
    args = parse_args(argv)
    got_signal = []

    def on_signal(signum, _frame):
        if got_signal:
            log("second signal: stopping the sandbox now")
            raise KeyboardInterrupt
        got_signal.append(signum)
        log(f"{signal.Signals(signum).name}: stopping the command, then the sandbox")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        try:
            image_dir = ensure_sandbox()
        except InfraError as e:
            log(f"INFRASTRUCTURE FAILURE (not a test failure): cannot build the sandbox: {e}")
            return EXIT_INFRA
        if args.build_only:
            print(image_dir)
            return 0
        attempt = 0
        while True:
            try:
                rc = run_once(image_dir, args, lambda: bool(got_signal))
                if got_signal and rc == 0:
                    return 0
                return rc
            except InfraError as e:
                log(f"INFRASTRUCTURE FAILURE (not a test failure): {e}")
                if got_signal or attempt >= args.infra_retries:
                    return 128 + got_signal[0] if got_signal else EXIT_INFRA
                attempt += 1
                log(f"retrying on a fresh sandbox boot ({attempt} of {args.infra_retries})")
    except TimeoutError:
        log(f"the command timed out after {args.timeout:.0f}s")
        return EXIT_TIMEOUT
    except KeyboardInterrupt:
        return 128 + (got_signal[0] if got_signal else signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
