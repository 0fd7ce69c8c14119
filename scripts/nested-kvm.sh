#!/usr/bin/env bash
# Run one command on a nested /dev/kvm (Debian's kernel under QEMU with
# emulated AMD-V); see tools/nested_kvm.py --help and docs/nested-kvm.md.
#   scripts/nested-kvm.sh [--timeout S] [--] COMMAND [ARG...]
# Exit status: the command's own, 124 timeout, 125 infrastructure failure.
set -euo pipefail
exec python3 "$(dirname "$0")/../tools/nested_kvm.py" "$@"
