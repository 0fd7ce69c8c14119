// What a device tells its driver outside the rings: InterruptStatus bits and
// the irq eventfd (4.2.2), the config generation counter, and
// DEVICE_NEEDS_RESET (2.1.2). All atomic: devices raise them from the event
// loop while vCPU threads read the registers.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/unique_fd.h"

namespace minivmm::virtio {

class TransportSignals {
 public:
  TransportSignals();  // creates the irq eventfd

  // The eventfd the VMM registers with KVM_IRQFD; written once per interrupt.
  int irq_eventfd() const { return irq_.get(); }

  // Used buffer notification: InterruptStatus bit 0 + interrupt.
  void used_buffer();
  // Device-initiated config change: generation++, InterruptStatus bit 1 + interrupt.
  void config_changed();
  // Config space changed by the driver's own write: generation++ only.
  void bump_config_generation();
  // The device hit an error it cannot recover from without reset (2.1.2):
  // DEVICE_NEEDS_RESET + config change interrupt.
  void needs_reset();

  uint32_t interrupt_status() const { return isr_.load(); }
  void acknowledge(uint32_t bits) { isr_.fetch_and(~bits); }
  uint32_t config_generation() const { return generation_.load(); }
  bool needs_reset_set() const { return needs_reset_.load(); }

  // Device reset: interrupt status and DEVICE_NEEDS_RESET clear; the
  // generation keeps counting (drivers compare it, never expect 0).
  void clear();

 private:
  void raise(uint32_t bit);

  UniqueFd irq_;
  std::atomic<uint32_t> isr_{0};
  std::atomic<uint32_t> generation_{0};
  std::atomic<bool> needs_reset_{false};
};

}  // namespace minivmm::virtio
