#include "vmm/run/run_state.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "common/error.h"

namespace minivmm {

RunState::RunState() : stop_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!stop_fd_) throw sys_error("eventfd for the run state");
}

void RunState::request_stop(int exit_code, const std::string& reason) {
  {
    std::lock_guard lock(mu_);
    if (stopping_.load(std::memory_order_relaxed)) return;
    exit_code_ = exit_code;
    reason_ = reason;
    stopping_.store(true, std::memory_order_release);
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(stop_fd_.get(), &one, sizeof(one));
}

int RunState::exit_code() const {
  std::lock_guard lock(mu_);
  return exit_code_;
}

std::string RunState::reason() const {
  std::lock_guard lock(mu_);
  return reason_;
}

}  // namespace minivmm
