"""The named checks of one test script: each prints `ok` or `FAIL` with its
label, and the script's exit status says whether any failed."""
from __future__ import annotations

import sys


class Checklist:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def report(self, label: str, ok: bool, detail: str = "") -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {label}{': ' + detail if detail else ''}", flush=True)
        if not ok:
            self.failures.append(label)

    def exit(self) -> None:
        """Print the count of failed checks and exit 1 if there are any, else 0."""
        print(f"{len(self.failures)} failed")
        sys.exit(1 if self.failures else 0)
