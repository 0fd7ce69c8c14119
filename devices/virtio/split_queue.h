// The device side of one split virtqueue (virtio 1.x 2.7) in guest memory.
// Used from one thread (the device's event loop). The guest writes the rings
// concurrently, so every shared index is read once, through atomics, with the
// fences 2.7.13 / 2.7.14 require; nothing the guest wrote is trusted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/guest_memory.h"
#include "devices/virtio/descriptor_chain.h"

namespace minivmm::virtio {

// Guest physical addresses of the three ring parts, as programmed through the
// transport (QueueDesc / QueueDriver / QueueDevice).
struct QueueLayout {
  uint16_t size = 0;
  uint64_t desc = 0;    // descriptor table
  uint64_t driver = 0;  // available ring
  uint64_t device = 0;  // used ring
};

// Why `layout` cannot be used (size not a power of two or above `max_size`,
// a ring outside guest RAM or misaligned, 2.7), or nullopt when it is fine.
std::optional<std::string> check_queue_layout(const GuestMemory& mem, const QueueLayout& layout,
                                              uint16_t max_size);

class SplitQueue {
 public:
  SplitQueue() = default;  // a queue the driver did not enable
  // `layout` must have passed check_queue_layout.
  SplitQueue(GuestMemory mem, QueueLayout layout, bool indirect_desc, bool event_idx);

  bool ready() const { return avail_ != nullptr; }
  uint16_t size() const { return layout_.size; }

  // Next available chain, or nullopt when none is available or the ring is
  // corrupt (then broken() is true and the queue stays stopped). A chain
  // with a structural error is still returned (its head must go back to the
  // used ring).
  std::optional<DescriptorChain> pop();
  // The same into `chain` (its storage reused); false where pop() returns
  // nullopt.
  bool pop_into(DescriptorChain& chain);

  // Whether the driver made a chain available that pop() has not taken: one
  // acquire load, for polling.
  bool has_available() const;
  // Off while the device polls the ring: with EVENT_IDX avail_event is left
  // behind (the driver's vring_need_event stays false), else the used
  // ring's NO_NOTIFY flag is set (2.7.7, 2.7.10). On again: published, and
  // the caller must look at the ring once more (has_available) before it
  // sleeps, for chains made available in between.
  void set_notifications(bool enabled);

  // Returns a chain to the driver with `len` bytes written (2.7.8).
  void push_used(uint16_t head, uint32_t len);

  // Whether the driver wants an interrupt for what was pushed since the last
  // call (2.7.7.2: avail flags, or used_event with EVENT_IDX).
  bool needs_interrupt();

  // The device found the driver breaking the ring's rules (2.1.2): the
  // queue stops; the device must ask for a reset.
  void mark_broken(std::string reason) {
    if (broken_reason_.empty()) broken_reason_ = std::move(reason);
  }
  bool broken() const { return !broken_reason_.empty(); }
  const std::string& broken_reason() const { return broken_reason_; }

  // Ring state for reports (the SIGUSR1 ring lines): the next avail index the
  // device will take, the used idx it last published, and where the driver's
  // avail idx lives in host memory (guest RAM: another thread may read it
  // with an atomic load to see what the driver published; null if not ready).
  uint16_t last_avail() const { return last_avail_; }
  uint16_t used_idx() const { return used_idx_; }
  uint16_t* avail_idx_word() const;

 private:
  uint16_t load_avail_idx() const;
  void publish_avail_event(uint16_t index);

  GuestMemory mem_;
  QueueLayout layout_;
  bool indirect_ = false;
  bool event_idx_ = false;
  uint8_t* avail_ = nullptr;  // host view of the available ring
  uint8_t* used_ = nullptr;   // host view of the used ring
  uint16_t last_avail_ = 0;
  uint16_t used_idx_ = 0;
  uint16_t signalled_used_ = 0;  // used idx when needs_interrupt last ran
  bool notifications_ = true;    // set_notifications
  std::string broken_reason_;
};

// 2.7.7.2 / 2.7.10: with EVENT_IDX, notify when `new_idx` has just passed
// `event` since `old_idx`.
constexpr bool vring_need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

}  // namespace minivmm::virtio
