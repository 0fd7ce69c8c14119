#!/usr/bin/env bash
# The device-path benchmark (scripts/bench.sh device).
exec "$(dirname "$0")/bench.sh" device "$@"
