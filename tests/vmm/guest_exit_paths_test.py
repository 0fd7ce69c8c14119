#!/usr/bin/env python3
"""minivmm's exit paths on real KVM, with tiny hand-assembled 64-bit guests
(ELF images built here): the exit device, the i8042 reset line, a triple
fault, int3 handling on PVM, an unhandled emulation failure, and SIGTERM /
SIGINT. Each guest runs a handful of instructions, so this takes seconds even
where guest kernel code is emulated."""
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

MINIVMM = sys.argv[1]
PVM = os.path.exists("/sys/module/kvm_pvm") or not any(
    f in open("/proc/cpuinfo").read() for f in (" vmx", " svm"))
LOAD = 0x1000000
failures = []

HLT_LOOP = bytes([0xf4, 0xeb, 0xfd])                       # hlt; jmp hlt
GUESTS = {
    # mov eax, 42; mov dx, 0x4f0; out dx, eax
    "exit42": bytes([0xb8, 42, 0, 0, 0, 0x66, 0xba, 0xf0, 0x04, 0xef]) + HLT_LOOP,
    # mov eax, 0x1234; out 0x4f0 via dx: only the low byte is the status
    "exit_low_byte": bytes([0xb8, 0x34, 0x12, 0, 0, 0x66, 0xba, 0xf0, 0x04, 0xef]) + HLT_LOOP,
    # mov al, 0xfe; out 0x64, al  (keyboard-controller CPU reset)
    "i8042_reset": bytes([0xb0, 0xfe, 0xe6, 0x64]) + HLT_LOOP,
    # ud2 with an empty IDT: #UD -> #GP -> #DF -> shutdown
    "ud2": bytes([0x0f, 0x0b]) + HLT_LOOP,
    # int3 (the instruction PVM's emulator cannot execute)
    "int3": bytes([0xcc]) + HLT_LOOP,
    # jmp $: runs until minivmm is signalled
    "spin": bytes([0xeb, 0xfe]),
    # poll COM1's LSR until data is ready, read RBR, report the byte:
    # 1: mov dx,0x3fd; in al,dx; test al,1; jz 1b; mov dx,0x3f8; in al,dx;
    #    movzx eax,al; mov dx,0x4f0; out dx,eax
    "serial_echo": bytes([0x66, 0xba, 0xfd, 0x03, 0xec, 0xa8, 0x01, 0x74, 0xf7,
                          0x66, 0xba, 0xf8, 0x03, 0xec, 0x0f, 0xb6, 0xc0,
                          0x66, 0xba, 0xf0, 0x04, 0xef]) + HLT_LOOP,
}


def elf(code):
    """ELF64 ET_EXEC, x86-64, one PT_LOAD at LOAD (p_paddr = p_vaddr)."""
    ehdr = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, b"\0" * 7,
                       2, 0x3e, 1, LOAD, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0x1000, LOAD, LOAD, len(code), len(code), 0x1000)
    return (ehdr + phdr).ljust(0x1000, b"\0") + code


def start(d, name, extra=("--no-stdin",), stdin=subprocess.DEVNULL, ignore_sigint=False):
    path = os.path.join(d, name + ".elf")
    with open(path, "wb") as f:
        f.write(elf(GUESTS[name]))
    pre = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    return subprocess.Popen([MINIVMM, "--kernel", path, *extra], preexec_fn=pre,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=stdin)


def wait_for_log(p, marker, timeout=60):
    """Reads minivmm's log until `marker`: signals sent before the VMM set up
    its handling would test the default disposition, not minivmm (a slow,
    emulated machine can take seconds to get there). Returns what it read."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        seen += line
    return seen


def check(label, p, want_code, want_log=(), send=None):
    early = b""
    if send is not None:
        early = wait_for_log(p, b"first KVM_RUN")
        time.sleep(0.2)
        p.send_signal(send)
    try:
        out, err = p.communicate(timeout=60)
        err = early + err
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        print(f"FAIL {label}: no exit within 60 s")
        failures.append(label)
        return
    log = err.decode(errors="replace")
    ok = p.returncode == want_code and all(w in log for w in want_log)
    print(f"{'ok  ' if ok else 'FAIL'} {label}: exit {p.returncode} (want {want_code})")
    if not ok:
        print("   log:", log.strip()[-1500:])
        failures.append(label)


with tempfile.TemporaryDirectory() as d:
    check("exit device", start(d, "exit42"), 42, ["guest reported status 42"])
    check("exit device low byte", start(d, "exit_low_byte"), 0x34, ["guest reported status 4660"])
    check("i8042 reset", start(d, "i8042_reset"), 0, ["guest reset (i8042)"])
    check("triple fault", start(d, "ud2"), 76, ["triple fault", "RIP 0x", "last (oldest first): KVM_EXIT_SHUTDOWN", "IDT 0x"])
    if PVM:
        # With the workaround, int3 becomes #BP; with no IDT that escalates to
        # a triple fault (76), which proves the injection happened.
        check("int3 injected on PVM", start(d, "int3", ["--no-stdin", "--pvm-workarounds", "on"]), 76,
              ["triple fault"])
        check("emulation failure reported", start(d, "int3", ["--no-stdin", "--pvm-workarounds", "off"]), 75,
              ["instruction emulation failed", "instruction bytes: cc f4 eb fd"])
    else:
        check("int3 without IDT", start(d, "int3"), 76, ["triple fault"])
    # Host stdin reaches the guest's UART: the guest reports the byte it read.
    r, w = os.pipe()
    p = start(d, "serial_echo", extra=(), stdin=r)
    os.close(r)
    os.write(w, b"A")
    os.close(w)
    check("serial input", p, ord("A"), ["guest reported status 65"])
    check("SIGTERM", start(d, "spin"), 0, ["SIGTERM received"], send=signal.SIGTERM)
    check("SIGINT", start(d, "spin"), 0, ["SIGINT received"], send=signal.SIGINT)
    # Started with SIGINT ignored, as a background job of a script is: SIGINT
    # must still stop it (Linux keeps a blocked signal pending even when its
    # disposition is "ignore", so minivmm's signalfd sees it).
    check("SIGINT, ignored by the parent", start(d, "spin", ignore_sigint=True), 0,
          ["SIGINT received"], send=signal.SIGINT)

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
