// The start-up timeline: how long each step from process start to the first
// KVM_RUN took, one debug log line per step, so a slow start names its step.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace minivmm {

struct StartupStep {
  std::string name;
  int64_t step_us = 0;   // since the previous step (or process start)
  int64_t total_us = 0;  // since process start
};

// "start-up: <name> <step> us (at <total> us)": the debug line for a step.
std::string format_startup_step(const StartupStep& step);

class StartupTimeline {
 public:
  using Clock = std::chrono::steady_clock;
  // `now` is the clock read at each step; tests pass their own.
  explicit StartupTimeline(Clock::time_point started,
                           std::function<Clock::time_point()> now = Clock::now);

  // Ends the step called `name` now: logs it at debug level and returns it.
  StartupStep step(const std::string& name);
  // Milliseconds since process start.
  double ms() const;
  Clock::time_point started() const { return started_; }

 private:
  Clock::time_point started_;
  Clock::time_point last_;
  std::function<Clock::time_point()> now_;
};

}  // namespace minivmm
