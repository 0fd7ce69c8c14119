#!/usr/bin/env bash
# The storage benchmark (scripts/bench.sh storage).
exec "$(dirname "$0")/bench.sh" storage "$@"
