#!/usr/bin/env bash
# device_bench's three drivers (interrupt-driven, polling, --same-thread) each
# complete a fixed number of requests in every mode and row: a driver that
# lost a request or a device that never polled would stop with "nothing used
# within 10 s" or print fewer rows. No peers, no timing: numbers are not checked.
# The image lives in the build tree (ext4 there; O_DIRECT fails on tmpfs).
set -euo pipefail
bench=${1:?usage: device_bench_smoke.sh DEVICE_BENCH WORK_DIR}
work=${2:?usage: device_bench_smoke.sh DEVICE_BENCH WORK_DIR}
mkdir -p "$work"
for driver in "" --driver-poll --same-thread; do
  out=$("$bench" --no-peers --requests 300 --rounds 2 --size-mib 8 --file "$work/smoke.img" $driver)
  rows=$(grep -c '^| device ' <<<"$out" || true)
  zero=$(awk -F'|' '/^\| device / && $4 + 0 <= 0' <<<"$out")
  echo "driver '${driver:-irq}': $rows rows"
  # The CPU column is there; its numbers need rows longer than these to mean
  # anything (other threads' CPU time is counted a scheduler tick late).
  if [ "$rows" -ne 25 ] || [ -n "$zero" ] || ! grep -q '| CPU us/IO |' <<<"$out"; then
    echo "FAIL: expected 25 device rows with IOPS > 0 and a CPU us/IO column, got:" >&2
    echo "$out" >&2
    exit 1
  fi
done
echo "PASS"
