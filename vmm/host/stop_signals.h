// SIGINT/SIGTERM for the whole run. They are blocked in every thread and
// read from a signalfd(2) by one watcher thread:
// - the first asks the run to stop gracefully (vCPUs leave KVM_RUN, disk
//   requests in flight complete, the final flush runs; exit code 0);
// - a second one, while that stop is still under way (a hung drain, a
//   stuck set-up), forces the exit at once: the terminal is restored and
//   the process _exits with exit_code::kForcedStop, skipping the flush.
// A signal that arrives after the guest itself asked to stop counts as the
// first (the stop already under way is graceful), so it takes two to force.
// SIGUSR1 goes the same way but stops nothing: the watcher logs the
// `disk N stats: ...` line of every open disk (storage/disk_stats.h), then a
// `ring disk=N queue=M ...` line per virtio-blk queue
// (devices/virtio_blk/ring_report.h; it waits up to 2 s for the I/O loop).
#pragma once

#include <functional>
#include <thread>

#include "common/unique_fd.h"
#include "vmm/run/run_state.h"

namespace minivmm {

class StopSignals {
 public:
  // Blocks SIGINT/SIGTERM in the calling thread: construct before any other
  // thread starts, so all inherit the mask (signalfd(2) only sees signals
  // blocked in every thread). `on_watcher_start` runs first on the watcher
  // thread (minivmm installs its seccomp filter there).
  StopSignals(RunState& state, std::function<void()> on_watcher_start);
  ~StopSignals();  // stops and joins the watcher; the signals stay blocked
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  void watch(RunState& state, const std::function<void()>& on_watcher_start);
  void on_signal(RunState& state, int signo);

  UniqueFd signal_fd_;
  UniqueFd quit_fd_;      // eventfd: the destructor's wake-up
  int received_ = 0;      // watcher thread only
  std::jthread watcher_;  // last: starts after the fds exist
};

}  // namespace minivmm
