"""Tiny hand-assembled 64-bit guests for minivmm's VM tests: an ELF64 image
with one PT_LOAD that minivmm enters in long mode. Each runs a handful of
instructions, so a test takes seconds even where guest code is emulated."""
import os
import struct

LOAD = 0x1000000

# mov dx, 0x3f8; 1: mov al, 'x'; out dx, al; mov al, '\n'; out dx, al; jmp 1b
# (COM1's transmit register: one console line "x" after another, forever)
CONSOLE_FLOOD = bytes([0x66, 0xba, 0xf8, 0x03, 0xb0, 0x78, 0xee, 0xb0, 0x0a, 0xee, 0xeb, 0xf8])
# jmp $: runs until minivmm is stopped
SPIN = bytes([0xeb, 0xfe])


def elf(code):
    """ELF64 ET_EXEC, x86-64, one PT_LOAD at LOAD (p_paddr = p_vaddr)."""
    ehdr = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, b"\0" * 7,
                       2, 0x3e, 1, LOAD, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0x1000, LOAD, LOAD, len(code), len(code), 0x1000)
    return (ehdr + phdr).ljust(0x1000, b"\0") + code


def write_guest(directory, name, code):
    path = os.path.join(directory, name + ".elf")
    with open(path, "wb") as f:
        f.write(elf(code))
    return path


def write_disk(directory, name="disk.img", size=1 << 20):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def kvm_usable():
    """None when /dev/kvm can be opened read-write, else the reason."""
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return None
    except OSError as e:
        return f"/dev/kvm: {e.strerror}"
