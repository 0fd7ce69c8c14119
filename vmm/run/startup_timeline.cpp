#include "vmm/run/startup_timeline.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <utility>

namespace minivmm {
namespace {

int64_t micros(StartupTimeline::Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

}  // namespace

std::string format_startup_step(const StartupStep& step) {
  return fmt::format("start-up: {} {} us (at {} us)", step.name, step.step_us, step.total_us);
}

StartupTimeline::StartupTimeline(Clock::time_point started, std::function<Clock::time_point()> now)
    : started_(started), last_(started), now_(std::move(now)) {}

StartupStep StartupTimeline::step(const std::string& name) {
  const Clock::time_point t = now_();
  StartupStep s{name, micros(t - last_), micros(t - started_)};
  last_ = t;
  spdlog::debug("{}", format_startup_step(s));
  return s;
}

double StartupTimeline::ms() const {
  return std::chrono::duration<double, std::milli>(now_() - started_).count();
}

}  // namespace minivmm
