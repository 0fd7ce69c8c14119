#include "vmm/kvm/vcpu_pause.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace minivmm {
namespace {

// Threads that stand in for vCPUs: each checks the gate, then "runs" (counts).
struct FakeVcpus {
  FakeVcpus(VcpuPause& gate, RunState& state, unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
      threads.emplace_back([&] {
        while (!state.stopping()) {
          gate.park_if_requested(state, [&] { ++parks; });
          ++runs;
        }
      });
    }
  }
  ~FakeVcpus() {
    for (auto& t : threads) t.join();
  }
  std::atomic<uint64_t> runs{0};
  std::atomic<int> parks{0};
  std::vector<std::thread> threads;
};

TEST(VcpuPause, PauseWaitsForEveryVcpuThenResumeLetsThemRun) {
  RunState state;
  VcpuPause gate(2);
  FakeVcpus vcpus(gate, state, 2);
  ASSERT_TRUE(gate.pause([] {}, std::chrono::seconds(30)));
  EXPECT_TRUE(gate.paused());
  EXPECT_EQ(vcpus.parks.load(), 2);  // each told the guest (KVM_KVMCLOCK_CTRL) once
  const uint64_t at_pause = vcpus.runs.load();
  EXPECT_TRUE(gate.pause([] {}, std::chrono::seconds(30)));  // already paused: at once
  EXPECT_EQ(vcpus.runs.load(), at_pause);                    // nobody ran meanwhile
  gate.resume();
  EXPECT_FALSE(gate.paused());
  while (vcpus.runs.load() == at_pause) std::this_thread::yield();
  state.request_stop(0, "test");
  gate.wake_for_stop();
}

TEST(VcpuPause, StopEndsPausedVcpus) {
  RunState state;
  VcpuPause gate(3);
  {
    FakeVcpus vcpus(gate, state, 3);
    ASSERT_TRUE(gate.pause([] {}, std::chrono::seconds(30)));
    state.request_stop(0, "test");
    gate.wake_for_stop();
  }  // joined: every parked thread saw the stop
  EXPECT_TRUE(state.stopping());
}

TEST(VcpuPause, PauseThatCannotCompleteIsWithdrawn) {
  RunState state;
  VcpuPause gate(2);
  FakeVcpus vcpus(gate, state, 1);  // the second vCPU never reaches the gate
  EXPECT_FALSE(gate.pause([] {}, std::chrono::milliseconds(50)));
  EXPECT_FALSE(gate.paused());
  const uint64_t after = vcpus.runs.load();
  while (vcpus.runs.load() == after) std::this_thread::yield();  // the other runs again
  state.request_stop(0, "test");
  gate.wake_for_stop();
}

}  // namespace
}  // namespace minivmm
