// Pausing every vCPU at once (PATCH /vm {"state": "Paused"}): a vCPU thread
// checks the gate before each KVM_RUN and, while a pause is requested,
// waits there instead of running the guest. The pausing thread makes each
// vCPU leave KVM_RUN (Vcpu::interrupt_run) and waits until all have parked.
// A stop wakes parked vCPUs so the run can end while paused.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

#include "vmm/run/run_state.h"

namespace minivmm {

class VcpuPause {
 public:
  explicit VcpuPause(unsigned vcpus) : vcpus_(vcpus) {}

  // vCPU thread, before KVM_RUN: when a pause is requested, calls
  // `on_park` (KVM_KVMCLOCK_CTRL) and waits until resumed or `state` stops.
  void park_if_requested(const RunState& state, const std::function<void()>& on_park);

  // Any thread: requests the pause and calls `kick` (every vCPU's
  // interrupt_run) until all vCPUs have parked or `timeout` passes; false
  // then, with the request withdrawn. True at once when already paused.
  bool pause(const std::function<void()>& kick, std::chrono::milliseconds timeout);
  void resume();
  // After RunState::request_stop: parked vCPUs see the stop and return.
  void wake_for_stop();
  bool paused() const;

 private:
  const unsigned vcpus_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;
  unsigned parked_ = 0;
};

}  // namespace minivmm
