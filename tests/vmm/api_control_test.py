#!/usr/bin/env python3
"""The control API on a running VM (docs/api.md), on real KVM with a tiny
guest that writes console lines without end (its progress is the serial
log's growth) and one disk:
- the socket replaces a stale one a dead run left, and is created 0600;
- GET /, /vm/config, /drives, /drives/0, /metrics answer with the VM's
  state, configuration and the disk's counters (curl --unix-socket too,
  where curl is installed);
- PATCH /vm Paused stops the guest (the log stops growing), GET / says
  Paused, Resumed lets it go on;
- bad requests (malformed HTTP, a huge body, chunked encoding, unknown
  route, wrong method, unknown field, wrong type, invalid JSON) get their
  4xx/5xx with a fault_message, and the VM keeps running;
- a client that connects and sends nothing holds no one up, and
  connections beyond the limit get 503 instead of waiting;
- PUT /actions Stop ends the run with exit code 0 and removes the socket;
- a path that is not a socket is refused (exit 65) and left as it was.
With `metrics`: only GET /metrics, checked by `promtool check metrics`
(exit 77, skipped, when promtool is not installed).
usage: api_control_test.py MINIVMM [metrics]"""
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

from framework.checklist import Checklist
from framework import tiny_guest
from framework import vmm_process

MINIVMM = sys.argv[1]
METRICS_ONLY = len(sys.argv) > 2 and sys.argv[2] == "metrics"
CONFIG_EXIT = 65  # exit_code::kConfig
CHECKS = Checklist()
report = CHECKS.report
failures = CHECKS.failures


def exchange(sock_path, raw, timeout=10):
    """Sends `raw` bytes, returns (status, body text) of the response."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        try:
            s.sendall(raw)
        except BrokenPipeError:
            pass  # answered and closed before reading it all (503): the answer is queued
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, body.decode(errors="replace")


def request(sock_path, method, path, body=None):
    raw = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n".encode()
    if body is not None:
        data = body.encode() if isinstance(body, str) else body
        raw += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        raw += data
    else:
        raw += b"\r\n"
    return exchange(sock_path, raw)


def fault_of(body):
    try:
        return json.loads(body).get("fault_message", "")
    except ValueError:
        return ""


def stale_socket(path):
    """A socket file nobody listens on, as a run that died leaves it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()


class Vm:
    def __init__(self, d, sock):
        kernel = tiny_guest.write_guest(d, "flood", tiny_guest.CONSOLE_FLOOD)
        self.disk = tiny_guest.write_disk(d)
        self.console = os.path.join(d, "console.log")
        self.sock = sock
        self.p, self.err = vmm_process.start(
            MINIVMM, ["--kernel", kernel, "--disk", self.disk + ",cache=writethrough",
                      "--serial-log", self.console, "--no-stdin", "--api-sock", sock])

    def ready(self):
        return vmm_process.wait_until(lambda: "API server listening" in self.err.text(), self.p, 30)

    def console_size(self):
        return os.path.getsize(self.console)

    def alive(self):
        return self.p.poll() is None

    def kill(self):
        if self.alive():
            self.p.kill()
            self.p.wait()


def check_reads(vm):
    status, body = request(vm.sock, "GET", "/")
    root = json.loads(body) if status == 200 else {}
    report("GET / shows id, Running, version, uptime", status == 200 and root.get("state") ==
           "Running" and root.get("vmm_version") and root.get("uptime_ms", 0) > 0 and root.get("id"),
           body)
    status, body = request(vm.sock, "GET", "/drives")
    drives = json.loads(body) if status == 200 else []
    ok = (len(drives) == 1 and drives[0]["drive_id"] == "0" and drives[0]["path_on_host"] ==
          vm.disk and drives[0]["cache_type"] == "writethrough" and not drives[0]["is_read_only"]
          and "at_risk_bytes" in drives[0]["stats"] and "flush_latency_us" in drives[0]["stats"])
    report("GET /drives lists the disk with its config and counters", ok, body[:300])
    status, body = request(vm.sock, "GET", "/drives/0")
    report("GET /drives/0 is that disk", status == 200 and drives and json.loads(body) ==
           drives[0], body[:200])
    status, body = request(vm.sock, "GET", "/vm/config")
    cfg = json.loads(body) if status == 200 else {}
    report("GET /vm/config is the effective configuration",
           cfg.get("api", {}).get("socket") == vm.sock and
           cfg.get("drives", [{}])[0].get("path_on_host") == vm.disk, body[:300])
    status, body = request(vm.sock, "GET", "/metrics")
    report("GET /metrics is Prometheus text", status == 200 and
           'minivmm_disk_writes_total{drive_id="0"}' in body and "# TYPE" in body, body[:200])
    if shutil.which("curl"):
        out = subprocess.run(["curl", "-s", "--unix-socket", vm.sock, "http://localhost/"],
                             capture_output=True, text=True, timeout=20)
        report("curl --unix-socket GET /", out.returncode == 0 and '"state":"Running"' in out.stdout,
               out.stdout + out.stderr)
    else:
        print("note: curl not installed; requests went through Python's socket module only")


def grows(vm, seconds=0.5):
    before = vm.console_size()
    time.sleep(seconds)
    return vm.console_size() > before


def check_pause(vm):
    report("the guest makes progress before the pause", grows(vm))
    status, body = request(vm.sock, "PATCH", "/vm", '{"state": "Paused"}')
    report("PATCH /vm Paused answers 204", status == 204, body)
    state = json.loads(request(vm.sock, "GET", "/")[1]).get("state")
    report("GET / says Paused", state == "Paused", state)
    time.sleep(0.1)  # a line being written when the vCPU left
    report("a paused guest makes no progress", not grows(vm))
    status, body = request(vm.sock, "PATCH", "/vm", '{"state": "Resumed"}')
    report("PATCH /vm Resumed answers 204", status == 204, body)
    report("the guest makes progress after the resume", grows(vm))
    state = json.loads(request(vm.sock, "GET", "/")[1]).get("state")
    report("GET / says Running again", state == "Running", state)


BAD_REQUESTS = [
    ("malformed request line", b"HELLO\r\n\r\n", 400, "malformed request line"),
    ("bare LF line ends", b"GET / HTTP/1.1\nHost: x\n\n", 400, "CRLF"),
    ("huge body", b"PUT /actions HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n", 413, "exceeds"),
    ("huge header section", b"GET / HTTP/1.1\r\nX: " + b"a" * 70000, 431, "exceeds"),
    ("chunked body", b"PUT /actions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501,
     "Transfer-Encoding"),
    ("PUT without a length", b"PUT /actions HTTP/1.1\r\n\r\n", 411, "Content-Length"),
    ("HTTP/2", b"GET / HTTP/2.0\r\n\r\n", 505, "HTTP version"),
]

BAD_ROUTES = [
    ("unknown route", "GET", "/snapshot/create", None, 404, "no resource"),
    ("wrong method", "DELETE", "/drives/0", None, 405, "not allowed"),
    ("unknown drive", "GET", "/drives/7", None, 404, "drive_id '7'"),
    ("unknown field", "PATCH", "/vm", '{"state": "Paused", "when": "now"}', 400,
     "unknown field 'when'"),
    ("wrong type", "PUT", "/actions", '{"action_type": 3}', 400, "must be a string"),
    ("invalid JSON", "PATCH", "/vm", '{"state": ', 400, "not valid JSON"),
    ("unknown action", "PUT", "/actions", '{"action_type": "Reboot"}', 400, "unknown action_type"),
]


def check_bad_requests(vm):
    for label, raw, want, text in BAD_REQUESTS:
        status, body = exchange(vm.sock, raw)
        report(f"{label} gets {want}", status == want and text in fault_of(body), f"{status} {body}")
    for label, method, path, body_in, want, text in BAD_ROUTES:
        status, body = request(vm.sock, method, path, body_in)
        report(f"{label} gets {want}", status == want and text in fault_of(body), f"{status} {body}")
    report("the VM keeps running after the bad requests", vm.alive() and grows(vm))
    state = json.loads(request(vm.sock, "GET", "/")[1]).get("state")
    report("and is still Running (no bad request paused or stopped it)", state == "Running", state)


def check_idle_clients(vm):
    idle = []
    try:
        for _ in range(16):  # the server's connection limit (api_server.h)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(vm.sock)
            idle.append(s)
        time.sleep(0.2)
        status, body = request(vm.sock, "GET", "/")
        report("beyond the connection limit a client gets 503 at once", status == 503, body)
    finally:
        for s in idle:
            s.close()
    time.sleep(0.2)
    status, _ = request(vm.sock, "GET", "/")
    report("closed idle clients free their places", status == 200)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as slow:
        slow.connect(vm.sock)
        slow.sendall(b"GET / HT")  # and nothing more
        status, _ = request(vm.sock, "GET", "/")
        report("a client that stalls mid-request holds no one up", status == 200)


def check_stop(vm):
    status, body = request(vm.sock, "PUT", "/actions", '{"action_type": "Stop"}')
    report("PUT /actions Stop answers 204", status == 204, body)
    try:
        code = vm.p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        code = None
    vm.err.join(5)
    log = vm.err.text()
    report("Stop exits 0 like SIGTERM", code == 0, f"exit {code}; log: {log[-600:]}")
    report("the stop went through the graceful path", "stop requested through the API" in log and
           "disk 0 stats:" in log, log[-400:])
    report("the socket file is removed at exit", not os.path.exists(vm.sock))


def check_refused_path(d):
    kernel = tiny_guest.write_guest(d, "spin", tiny_guest.SPIN)
    precious = os.path.join(d, "notes.txt")
    with open(precious, "w") as f:
        f.write("keep me")
    out = subprocess.run([MINIVMM, "--kernel", kernel, "--no-stdin", "--api-sock", precious],
                         capture_output=True, text=True, timeout=30)
    report("an API path that is a regular file is refused with exit 65",
           out.returncode == CONFIG_EXIT and "is a regular file, not a socket" in out.stderr,
           f"exit {out.returncode}: {out.stderr}")
    with open(precious) as f:
        report("and left as it was", f.read() == "keep me")


def check_metrics_with_promtool(vm):
    status, body = request(vm.sock, "GET", "/metrics")
    out = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                         text=True, timeout=60)
    report("promtool check metrics accepts GET /metrics", status == 200 and out.returncode == 0 and
           not out.stdout.strip() and not out.stderr.strip(),
           f"status {status}, promtool exit {out.returncode}: {out.stdout}{out.stderr}\n{body}")


def main():
    why = tiny_guest.kvm_usable()
    if why:
        print(f"SKIP: needs KVM ({why})")
        sys.exit(77)
    if METRICS_ONLY and not shutil.which("promtool"):
        print("SKIPPED: promtool not installed (Debian package prometheus; "
              "scripts/install-deps.sh installs it)")
        sys.exit(77)
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "api.sock")
        stale_socket(sock)
        vm = Vm(d, sock)
        try:
            if not vm.ready():
                report("API server starts", False, vm.err.text()[-800:])
                return
            if METRICS_ONLY:
                check_metrics_with_promtool(vm)
                return
            mode = stat.S_IMODE(os.stat(sock).st_mode)
            report("the socket replaced the stale one and is mode 0600",
                   stat.S_ISSOCK(os.stat(sock).st_mode) and mode == 0o600, oct(mode))
            check_reads(vm)
            check_pause(vm)
            check_bad_requests(vm)
            check_idle_clients(vm)
            check_stop(vm)
        finally:
            vm.kill()
        check_refused_path(d)


main()
if failures:
    print(f"{len(failures)} check(s) failed: {failures}")
    sys.exit(1)
print("all checks passed")
