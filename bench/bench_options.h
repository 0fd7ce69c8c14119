// Command-line options shared by the storage and device benchmarks.
#pragma once

#include <cstdint>
#include <string>

#include "storage/disk.h"

namespace minivmm::bench {

struct Options {
  std::string file;
  uint64_t size = 128ull << 20;
  double seconds = 0.5;
  unsigned flush_every = 16;
  bool peers = true;
  // Each row runs minivmm and qemu-img this many times, alternating, and
  // shows each program's median run: this machine's disk drifts by 10-20%
  // between consecutive seconds, more than some rows' difference.
  unsigned rounds = 1;
  storage::IoEngineKind engine = storage::IoEngineKind::Auto;
  std::string only_mode;  // empty: all five
  // Stop each row after this many requests instead of after `seconds` (0:
  // time-bound): a fixed amount of work, for repeatable instruction counts
  // under callgrind. Only programs that pass allow_requests take it.
  uint64_t requests = 0;
  // device_bench: the driver polls the used ring instead of sleeping on the
  // interrupt (a Linux guest with virtio_blk.poll_queues and polled I/O).
  bool driver_poll = false;
  // device_bench: the device loop's polling limit (EventLoop, PollWindow);
  // 0 turns polling off (for callgrind, where spinning counts instructions).
  unsigned poll_max_us = 32;
  // device_bench, interrupt-driven driver: how long it polls for the
  // interrupt before its thread sleeps, with the grow/shrink policy of KVM
  // halt polling (Documentation/virt/kvm/halt-polling.rst; kvm.halt_poll_ns
  // and the guest's cpuidle-haltpoll both default to 200 us). 0: sleeps at
  // once, as a vCPU with halt polling off.
  unsigned driver_halt_poll_us = 200;
  // device_bench: no device thread. The driver's thread polls the device
  // (a caller-pumped EventLoop's poll_once()) between its used-ring checks,
  // as if the notifying vCPU served its own requests. It measures the
  // device code alone, without the cross-CPU hand-off (bench/README.md).
  bool same_thread = false;
};

// Throws minivmm::Error naming an unknown option or a missing value.
Options parse_options(int argc, char** argv, const std::string& default_file, bool allow_requests);

}  // namespace minivmm::bench
