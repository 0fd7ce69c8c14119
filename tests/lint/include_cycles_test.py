"""scripts/check-include-cycles.py on made-up trees: it fails on a cycle of
folders or of units and names it, and passes a tree whose includes point one
way."""

import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check-include-cycles.py"


def run(files: dict, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as root:
        for name, text in files.items():
            path = Path(root) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return subprocess.run([sys.executable, str(SCRIPT), "--root", root, *args],
                              capture_output=True, text=True, check=False)


class IncludeCycles(unittest.TestCase):
    def test_folders_including_each_other_fail_and_are_named(self):
        r = run({"vmm/a/x.h": '#include "vmm/b/y.h"\n',
                 "vmm/b/y.cpp": '#include "common/z.h"\n#include "vmm/a/x.h"\n',
                 "common/z.h": "#pragma once\n"})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("include cycle: vmm/a -> vmm/b -> vmm/a", r.stderr)
        self.assertIn('vmm/b/y.cpp:2: #include "vmm/a/x.h"', r.stderr)

    def test_a_cycle_through_the_root_folder_fails(self):
        r = run({"vmm/main.cpp": '#include "vmm/kvm/vcpu.h"\n',
                 "vmm/exit_codes.h": "#pragma once\n",
                 "vmm/kvm/vcpu.h": '#include "vmm/exit_codes.h"\n'})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("vmm -> vmm/kvm -> vmm", r.stderr)

    def test_one_way_includes_pass(self):
        r = run({"vmm/machine.cpp": '#include "vmm/kvm/vm.h"\n#include <vector>\n',
                 "vmm/kvm/vm.h": '#include "common/error.h"\n#include "vmm/kvm/io.h"\n',
                 "vmm/kvm/io.h": '#include "vmm/run/exit_codes.h"\n',
                 "vmm/run/exit_codes.h": "#pragma once\n",
                 "common/error.h": "#pragma once\n"},
                "--units-under", "vmm")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_units_including_each_other_fail_only_where_asked(self):
        files = {"vmm/host/filter.cpp": '#include "vmm/host/violation.h"\n',
                 "vmm/host/violation.h": '#include "vmm/host/filter.h"\n',
                 "vmm/host/filter.h": "#pragma once\n"}
        self.assertEqual(run(files).returncode, 0)  # one folder: no folder cycle
        r = run(files, "--units-under", "vmm")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("vmm/host/filter -> vmm/host/violation -> vmm/host/filter", r.stderr)


if __name__ == "__main__":
    unittest.main()
