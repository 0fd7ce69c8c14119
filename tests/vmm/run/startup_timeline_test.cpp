#include "vmm/run/startup_timeline.h"

#include <gtest/gtest.h>

namespace minivmm {
namespace {

using Clock = StartupTimeline::Clock;
using std::chrono::microseconds;

// A clock the test moves by hand: each step's time is exact, not measured.
struct FakeClock {
  Clock::time_point t{};
  Clock::time_point operator()() const { return t; }
};

TEST(StartupTimeline, EachStepIsTimedFromThePreviousOneAndFromStart) {
  FakeClock clock;
  const Clock::time_point start = clock.t;
  StartupTimeline timeline(start, [&clock] { return clock(); });
  clock.t += microseconds(250);
  const StartupStep parse = timeline.step("config parse");
  clock.t += microseconds(1200);
  const StartupStep vm = timeline.step("VM create");
  EXPECT_EQ(parse.name, "config parse");
  EXPECT_EQ(parse.step_us, 250);
  EXPECT_EQ(parse.total_us, 250);
  EXPECT_EQ(vm.step_us, 1200);
  EXPECT_EQ(vm.total_us, 1450);
  EXPECT_DOUBLE_EQ(timeline.ms(), 1.45);
}

TEST(StartupTimeline, LineNamesTheStepAndBothTimes) {
  EXPECT_EQ(format_startup_step({"kernel load", 4100, 5300}),
            "start-up: kernel load 4100 us (at 5300 us)");
}

}  // namespace
}  // namespace minivmm
