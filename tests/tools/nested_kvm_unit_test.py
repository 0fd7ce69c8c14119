#!/usr/bin/env python3
"""The nested-KVM sandbox runner's checks that need no sandbox boot
(tools/nested_kvm.py, imported as a module; no QEMU, no apt, no network):

  deb        a cached kernel .deb is used only when its SHA256 is the one
             apt's package lists give; a corrupt one is downloaded again, and
             a download that still does not match is refused, naming both
  debs dir   the .deb cache directory is private (0700), also when an
             earlier version left it world-writable
  sha256     the archive's SHA256 is read from an apt-cache show record, and
             a record without one is a clear error
  status     a command's exit 125 with an infra_error file beside it is a
             sandbox failure (retried on a fresh boot); any other status,
             a plain 125 included, is the command's own
  rw paths   what the sandbox shares read-write: the repository, the build
             directory, the cache and TMPDIR, none nested in another, never /
             or /var/tmp (the scratch disk inside)

usage: nested_kvm_unit_test.py REPO_ROOT
"""
import hashlib
import os
import stat
import sys
import tempfile
import unittest
from pathlib import Path

REPO = Path(sys.argv.pop(1) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]).resolve()

import nested_kvm  # noqa: E402  (tools/ is on PYTHONPATH: tests/tools/CMakeLists.txt)

GOOD = b"!<arch>\ndebian-binary   the archive's kernel package\n"
GOOD_SHA256 = hashlib.sha256(GOOD).hexdigest()
NAME = "linux-image-6.1.0-99-amd64_6.1.999-1_amd64.deb"
PATTERN = "linux-image-6.1.0-99-amd64_6.1.999-1_*.deb"


class VerifiedDeb(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.debs = Path(self.tmp.name) / "debs"
        self.downloads = 0

    def tearDown(self):
        self.tmp.cleanup()

    def download(self, content):
        def fake_apt_get_download():
            self.downloads += 1
            (self.debs / NAME).write_bytes(content)
        return fake_apt_get_download

    def test_matching_cached_deb_is_used_without_download(self):
        self.debs.mkdir(mode=0o700)
        (self.debs / NAME).write_bytes(GOOD)
        deb = nested_kvm.verified_deb(self.debs, PATTERN, GOOD_SHA256, self.download(GOOD))
        self.assertEqual(deb, self.debs / NAME)
        self.assertEqual(self.downloads, 0)

    def test_corrupt_cached_deb_is_detected_and_downloaded_again(self):
        self.debs.mkdir(mode=0o700)
        (self.debs / NAME).write_bytes(GOOD[:-1] + b"X")  # one byte changed
        deb = nested_kvm.verified_deb(self.debs, PATTERN, GOOD_SHA256, self.download(GOOD))
        self.assertEqual(self.downloads, 1)
        self.assertEqual(deb.read_bytes(), GOOD)

    def test_download_that_does_not_match_is_refused(self):
        bad = b"not the archive's file"
        with self.assertRaises(nested_kvm.InfraError) as e:
            nested_kvm.verified_deb(self.debs, PATTERN, GOOD_SHA256, self.download(bad))
        msg = str(e.exception)
        for part in (NAME, hashlib.sha256(bad).hexdigest(), GOOD_SHA256, "refusing"):
            self.assertIn(part, msg)
        self.assertEqual(list(self.debs.glob("*.deb")), [], "a refused .deb must not stay in the cache")

    def test_download_that_leaves_nothing_is_an_error(self):
        with self.assertRaises(nested_kvm.InfraError) as e:
            nested_kvm.verified_deb(self.debs, PATTERN, GOOD_SHA256, lambda: None)
        self.assertIn(PATTERN, str(e.exception))

    def test_debs_dir_is_created_private(self):
        nested_kvm.verified_deb(self.debs, PATTERN, GOOD_SHA256, self.download(GOOD))
        self.assertEqual(stat.S_IMODE(self.debs.stat().st_mode), 0o700)

    def test_world_writable_debs_dir_is_made_private(self):
        self.debs.mkdir()
        os.chmod(self.debs, 0o1777)
        (self.debs / NAME).write_bytes(GOOD)
        nested_kvm.verified_deb(self.debs, PATTERN, GOOD_SHA256, self.download(GOOD))
        self.assertEqual(stat.S_IMODE(self.debs.stat().st_mode), 0o700)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to give the directory to another user")
    def test_debs_dir_of_another_user_is_refused(self):
        self.debs.mkdir(mode=0o700)
        os.chown(self.debs, 65534, 65534)
        with self.assertRaises(nested_kvm.InfraError) as e:
            nested_kvm.verified_deb(self.debs, PATTERN, GOOD_SHA256, self.download(GOOD))
        self.assertIn(f"{self.debs} belongs to uid 65534", str(e.exception))


class ArchiveSha256(unittest.TestCase):
    RECORD = ("Package: linux-image-6.1.0-99-amd64\nVersion: 6.1.999-1\n"
              "Filename: pool/main/l/linux-signed-amd64/" + NAME + "\nSize: 70000000\n"
              "MD5sum: 0123456789abcdef0123456789abcdef\nSHA256: " + GOOD_SHA256.upper() + "\n"
              "Description: Linux 6.1 for 64-bit PCs (signed)\n")

    def test_sha256_field_is_read(self):
        self.assertEqual(nested_kvm.archive_sha256(self.RECORD, "pkg"), GOOD_SHA256)

    def test_record_without_sha256_is_an_error(self):
        record = "\n".join(ln for ln in self.RECORD.splitlines() if not ln.startswith("SHA256"))
        with self.assertRaises(nested_kvm.InfraError) as e:
            nested_kvm.archive_sha256(record, "linux-image-6.1.0-99-amd64 6.1.999-1")
        self.assertIn("no SHA256 for linux-image-6.1.0-99-amd64 6.1.999-1", str(e.exception))

    def test_malformed_sha256_is_an_error(self):
        with self.assertRaises(nested_kvm.InfraError) as e:
            nested_kvm.archive_sha256("SHA256: 1234\n", "pkg")
        self.assertIn("malformed SHA256", str(e.exception))


class CommandStatus(unittest.TestCase):
    """A command's 125 with an infra_error beside it is a sandbox failure
    (retried on a fresh boot); a plain 125 or any other status is the command's."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.run_dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        (self.run_dir / name).write_text(text)

    def test_status_is_returned(self):
        self.write("status", "3\n")
        self.assertEqual(nested_kvm.command_status(self.run_dir), 3)

    def test_plain_125_is_the_commands_own(self):
        self.write("status", "125\n")
        self.assertEqual(nested_kvm.command_status(self.run_dir), 125)

    def test_125_with_infra_error_is_retried(self):
        self.write("status", "125\n")
        self.write("infra_error", "sandbox stall: vcpu0 98% in guest mode")
        with self.assertRaisesRegex(nested_kvm.InfraError, "sandbox stall"):
            nested_kvm.command_status(self.run_dir)

    def test_infra_error_beside_another_status_is_ignored(self):
        self.write("status", "1\n")
        self.write("infra_error", "stale")
        self.assertEqual(nested_kvm.command_status(self.run_dir), 1)

    def test_no_status_is_none_and_init_failure_raises(self):
        self.assertIsNone(nested_kvm.command_status(self.run_dir))
        self.write("infra_error", "modprobe kvm_amd failed")
        with self.assertRaises(nested_kvm.InfraError):
            nested_kvm.command_status(self.run_dir)


class WritablePaths(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.top = Path(self.tmp.name).resolve()
        self.repo = self.top / "repo"
        (self.repo / ".git").mkdir(parents=True)
        (self.repo / "build" / "tests").mkdir(parents=True)
        self.cache = self.top / "cache"
        self.cache.mkdir()

    def tearDown(self):
        self.tmp.cleanup()

    def paths(self, cwd, **env):
        return nested_kvm.writable_paths(cwd, {"MINIVMM_CACHE": str(self.cache), **env})

    def test_repository_of_cwd_runner_repo_and_cache(self):
        got = self.paths(self.repo / "build" / "tests")
        self.assertEqual(got, sorted([self.repo, self.cache, REPO]))

    def test_build_dir_outside_the_repo_and_tmpdir(self):
        build, tmp = self.top / "out-of-tree-build", self.top / "tmp"
        build.mkdir()
        tmp.mkdir()
        got = self.paths(self.repo, MINIVMM_BUILD_DIR="../out-of-tree-build", TMPDIR=str(tmp))
        self.assertEqual(got, sorted([self.repo, self.cache, REPO, build, tmp]))

    def test_nested_paths_are_shared_once(self):
        got = self.paths(self.repo, MINIVMM_BUILD_DIR="build", TMPDIR=str(self.repo / "build"))
        self.assertEqual(got, sorted([self.repo, self.cache, REPO]))

    def test_root_var_tmp_and_missing_dirs_are_never_shared(self):
        got = self.paths(self.repo, TMPDIR="/var/tmp", MINIVMM_BUILD_DIR=str(self.top / "missing"))
        self.assertEqual(got, sorted([self.repo, self.cache, REPO]))
        got = nested_kvm.writable_paths(Path("/"), {"MINIVMM_CACHE": str(self.cache), "TMPDIR": "/"}, ["/"])
        self.assertNotIn(Path("/"), got)

    def test_cwd_outside_any_repository_is_not_shared(self):
        elsewhere = self.top / "elsewhere"
        elsewhere.mkdir()
        self.assertEqual(self.paths(elsewhere), sorted([self.cache, REPO]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
