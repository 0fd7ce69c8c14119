"""Host-side views of the disk images a test gives minivmm."""
from __future__ import annotations

import os


def open_image_flags(pid: int, images: list[str]) -> dict[str, set[int]]:
    """For each image, the open-file flags of every fd the process has on it."""
    flags: dict[str, set[int]] = {}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return flags
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target not in images:
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                for line in info:
                    if line.startswith("flags:"):
                        flags.setdefault(target, set()).add(int(line.split()[1], 8))
        except (FileNotFoundError, ProcessLookupError):
            continue  # fd closed or process gone meanwhile
    return flags
