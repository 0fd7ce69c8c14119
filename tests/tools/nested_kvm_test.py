#!/usr/bin/env python3
"""The nested-KVM sandbox runner (tools/nested_kvm.py) as a user sees it:
each case runs scripts/nested-kvm.sh for real (QEMU TCG boots; no /dev/kvm
needed on this machine) and checks its exit status and output.

  status     the command's exit status comes back exactly; stdout and stderr
             arrive on their own streams; cwd and environment are the caller's;
             MINIVMM_NESTED_CPUS sets the sandbox's CPU count
  kvm        inside there is a hardware-virtualization /dev/kvm (svm, not PVM)
             and /var/tmp is a real block device (ext4), O_DIRECT works
  readonly   the host's / is read-only inside (EROFS in /etc, /usr, $HOME);
             the repository, the cache and a --rw directory are written
             through to the host
  timeout    a command past --timeout is stopped: exit 124
  signal     SIGTERM to the runner reaches the command (its trap runs) and the
             runner returns the command's status
  freeze     a sandbox that stops beating is reported as an infrastructure
             failure (exit 125, "froze"), with QEMU's register dump
  missing    a missing host tool is named with its Debian package (exit 125)

usage: nested_kvm_test.py REPO_ROOT
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(sys.argv[1])
RUNNER = os.path.join(REPO, "scripts", "nested-kvm.sh")
failures = []


def run(args, env=None, timeout=600):
    p = subprocess.run([RUNNER, *args], capture_output=True, timeout=timeout,
                       env={**os.environ, **(env or {})}, cwd=REPO)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def expect(label, ok, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {label}" + ("" if ok else f": {detail}"), flush=True)
    if not ok:
        failures.append(label)


def case_status():
    rc, out, err = run(["--", "sh", "-c", 'echo "out $PWD $NESTED_TEST_VAR $(nproc)"; echo err >&2; exit 7'],
                       env={"NESTED_TEST_VAR": "passed-through", "MINIVMM_NESTED_CPUS": "2"})
    expect("status: exit 7 comes back", rc == 7, f"rc={rc} err={err[-500:]}")
    expect("status: stdout, cwd, environment, MINIVMM_NESTED_CPUS=2 gives two CPUs (default 1)",
           out.strip() == f"out {REPO} passed-through 2", repr(out))
    expect("status: stderr on its own stream", "err" in err and "err" not in out, repr(err[-300:]))


def case_kvm():
    script = ("grep -q -w svm /proc/cpuinfo && test -c /dev/kvm && test ! -d /sys/module/kvm_pvm && "
              "grep -q ' /var/tmp ext4 ' /proc/mounts && "
              "dd if=/dev/zero of=/var/tmp/direct bs=4096 count=4 oflag=direct status=none && echo kvm-ok")
    rc, out, err = run(["--", "sh", "-c", script])
    expect("kvm: hardware-virtualization /dev/kvm, ext4 /var/tmp with O_DIRECT",
           rc == 0 and "kvm-ok" in out, f"rc={rc} out={out!r} err={err[-500:]}")


def case_readonly():
    cache = os.path.realpath(os.environ.get("MINIVMM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "minivmm"))
    probe = f"minivmm-nested-rw-probe-{os.getpid()}"
    # Directories outside what the sandbox shares read-write ($HOME holds the
    # default cache, but is not shared itself).
    outside = [d for d in ("/etc", "/usr", os.path.realpath(os.path.expanduser("~")))
               if not any((d + "/").startswith(w + "/") for w in (os.path.realpath(REPO), cache))]
    extra = os.path.realpath(tempfile.mkdtemp(prefix="nested-rw-", dir="/tmp"))
    inside = {REPO: "repository", cache: "cache", extra: "--rw directory"}
    script = (
        "import errno, os\n"
        f"probe = {probe!r}\n"
        f"for d in {outside!r}:\n"
        "    try:\n"
        "        open(os.path.join(d, probe), 'w').close()\n"
        "        print('wrote', d)\n"
        "    except OSError as e:\n"
        "        print(errno.errorcode.get(e.errno, e.errno), d)\n"
        f"for d, what in {inside!r}.items():\n"
        "    with open(os.path.join(d, probe), 'w') as f:\n"
        "        f.write(what)\n"
        "    print('wrote', d)\n")
    try:
        rc, out, err = run(["--rw", extra, "--", "python3", "-c", script])
        lines = set(out.splitlines())
        for d in outside:
            expect(f"readonly: writing {d} fails with EROFS", f"EROFS {d}" in lines,
                   f"rc={rc} out={out!r} err={err[-500:]}")
        for d, what in inside.items():
            try:
                with open(os.path.join(d, probe)) as f:
                    on_host = f.read()
            except OSError as e:
                on_host = f"({e})"
            expect(f"readonly: the {what} is written through to the host",
                   rc == 0 and f"wrote {d}" in lines and on_host == what,
                   f"rc={rc} on the host: {on_host!r} out={out!r} err={err[-500:]}")
    finally:  # also what a sandbox that shares / read-write leaves behind
        shutil.rmtree(extra, ignore_errors=True)
        for d in [*outside, REPO, cache]:
            try:
                os.unlink(os.path.join(d, probe))
            except FileNotFoundError:
                pass


def case_timeout():
    rc, _, err = run(["--timeout", "5", "--grace", "5", "--", "sleep", "300"])
    expect("timeout: exit 124", rc == 124 and "timed out" in err, f"rc={rc} err={err[-500:]}")


def case_signal():
    p = subprocess.Popen([RUNNER, "--", "sh", "-c",
                          'trap "echo got-TERM; exit 9" TERM; echo ready; while :; do sleep 1; done'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    line = p.stdout.readline()  # the command is running inside
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=300)
    ok = line.strip() == b"ready" and b"got-TERM" in out and p.returncode == 9
    expect("signal: SIGTERM reaches the command, its status comes back", ok,
           f"rc={p.returncode} first={line!r} out={out!r} err={err.decode(errors='replace')[-500:]}")


def case_freeze():
    # Stop every child of the sandbox's init (the heartbeat among them): to the
    # runner this is a sandbox that no longer schedules anything.
    script = ("for p in /proc/[0-9]*; do "
              "[ \"$(cut -d' ' -f4 $p/stat 2>/dev/null)\" = 1 ] && "
              "[ \"$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)\" = '/bin/busybox sh /init ' ] && "
              "kill -STOP ${p#/proc/}; done; sleep 300")
    rc, _, err = run(["--freeze-after", "15", "--", "sh", "-c", script])
    expect("freeze: infrastructure failure 125 with a register dump",
           rc == 125 and "INFRASTRUCTURE FAILURE" in err and "froze" in err and "freeze-registers.txt" in err,
           f"rc={rc} err={err[-800:]}")


def case_missing():
    rc, _, err = run(["--", "true"], env={"MINIVMM_NESTED_QEMU": "qemu-system-x86_64-not-installed"})
    expect("missing: qemu-system-x86 named, exit 125",
           rc == 125 and "qemu-system-x86" in err and "install-deps" in err, f"rc={rc} err={err[-500:]}")


for case in (case_missing, case_status, case_kvm, case_readonly, case_timeout, case_signal, case_freeze):
    start = time.monotonic()
    case()
    print(f"     ({case.__name__} took {time.monotonic() - start:.0f}s)", flush=True)
print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
