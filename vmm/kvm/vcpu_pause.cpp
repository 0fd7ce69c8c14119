#include "vmm/kvm/vcpu_pause.h"

namespace minivmm {

void VcpuPause::park_if_requested(const RunState& state, const std::function<void()>& on_park) {
  {
    const std::lock_guard lock(mu_);
    if (!requested_) return;
  }
  on_park();
  std::unique_lock lock(mu_);
  ++parked_;
  cv_.notify_all();
  cv_.wait(lock, [&] { return !requested_ || state.stopping(); });
  --parked_;
}

bool VcpuPause::pause(const std::function<void()>& kick, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mu_);
  if (requested_ && parked_ == vcpus_) return true;
  requested_ = true;
  while (parked_ < vcpus_) {
    // Kick again each round: a vCPU between its gate check and KVM_RUN when
    // the first kick came may have missed it (immediate_exit was reset).
    lock.unlock();
    kick();
    lock.lock();
    if (cv_.wait_for(lock, std::chrono::milliseconds(10), [&] { return parked_ == vcpus_; })) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      requested_ = false;
      cv_.notify_all();
      return false;
    }
  }
  return true;
}

void VcpuPause::resume() {
  const std::lock_guard lock(mu_);
  requested_ = false;
  cv_.notify_all();
}

void VcpuPause::wake_for_stop() {
  const std::lock_guard lock(mu_);
  cv_.notify_all();
}

bool VcpuPause::paused() const {
  const std::lock_guard lock(mu_);
  return requested_ && parked_ == vcpus_;
}

}  // namespace minivmm
