// How a VM run ends: the first component that asks to stop (a device, a vCPU,
// a signal) sets the exit code and reason; later requests are ignored.
// Waiters block on an eventfd so the main loop can poll it with other fds.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "common/unique_fd.h"

namespace minivmm {

class RunState {
 public:
  RunState();
  void request_stop(int exit_code, const std::string& reason);
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  int stop_fd() const { return stop_fd_.get(); }
  int exit_code() const;
  std::string reason() const;

 private:
  UniqueFd stop_fd_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  int exit_code_ = 0;
  std::string reason_;
};

}  // namespace minivmm
