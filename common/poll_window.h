// Adaptive polling's window (QEMU's AioContext poll-max-ns policy): how
// long a loop polls for work before it sleeps. Grows from kGrowStart
// (doubling) while the sleeps that follow polling are short, stays while
// polling catches the work, drops to 0 after a sleep longer than the
// maximum, so an idle loop spends no CPU on polling.
#pragma once

#include <algorithm>
#include <chrono>

namespace minivmm {

class PollWindow {
 public:
  static constexpr std::chrono::nanoseconds kDefaultMax{std::chrono::microseconds(32)};
  static constexpr std::chrono::nanoseconds kGrowStart{std::chrono::microseconds(4)};

  explicit PollWindow(std::chrono::nanoseconds max = kDefaultMax) : max_(max) {}
  std::chrono::nanoseconds current() const { return current_; }

  // One wait: calls `ready` until it returns true or the window ends, then
  // `sleep` (which blocks until the work is there, or returns at once if it
  // already is) and updates the window from the whole wait. True when
  // polling found the work. For loops with one thing to wait on (the
  // benchmarks); EventLoop polls its pollers and sleeps in epoll itself.
  template <typename Ready, typename Sleep>
  bool poll_then_sleep(Ready ready, Sleep sleep) {
    const auto start = std::chrono::steady_clock::now();
    const auto poll_end = start + current_;
    while (std::chrono::steady_clock::now() < poll_end) {
      if (ready()) return true;
    }
    sleep();
    after_sleep(std::chrono::steady_clock::now() - start);
    return false;
  }

  // `waited`: from the start of polling to the end of the sleep that followed.
  void after_sleep(std::chrono::nanoseconds waited) {
    if (max_.count() == 0 || waited <= current_) return;  // never polls, or polled long enough
    if (waited > max_) {
      current_ = std::chrono::nanoseconds(0);
    } else if (current_ < max_) {
      current_ = current_.count() == 0 ? kGrowStart : std::min(current_ * 2, max_);
    }
  }

 private:
  std::chrono::nanoseconds max_;
  std::chrono::nanoseconds current_{0};
};

}  // namespace minivmm
