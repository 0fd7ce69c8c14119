#!/usr/bin/env bash
# Run one command on a nested /dev/kvm (Debian's kernel under QEMU with
# emulated AMD-V); see tools/nested_kvm.py --help and docs/nested-kvm.md.
#   scripts/nested-kvm.sh [--timeout S] [--rw DIR]... [--] COMMAND [ARG...]
# The host's / is read-only inside; the repository, the build directory, the
# cache, $TMPDIR and each --rw DIR (env MINIVMM_NESTED_RW) are writable.
# Exit status: the command's own, 124 timeout, 125 infrastructure failure.
set -euo pipefail
exec python3 "$(dirname "$0")/../tools/nested_kvm.py" "$@"
