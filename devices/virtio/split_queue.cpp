#include "devices/virtio/split_queue.h"

#include <atomic>
#include <bit>
#include <cstdio>
#include <cstring>

#include "devices/virtio/virtio_constants.h"

namespace minivmm::virtio {

namespace {

// Ring offsets (2.7.6, 2.7.8).
constexpr uint64_t kRingFlags = 0;
constexpr uint64_t kRingIdx = 2;
constexpr uint64_t kRingEntries = 4;
constexpr uint64_t kAvailEntrySize = 2;
constexpr uint64_t kUsedEntrySize = 8;

uint64_t avail_ring_bytes(uint16_t size) { return kRingEntries + kAvailEntrySize * size + 2; }
uint64_t used_ring_bytes(uint16_t size) { return kRingEntries + kUsedEntrySize * size + 2; }

// Shared 16-bit fields: the guest writes them concurrently, so access them as
// atomics (the rings are checked to be 2-byte aligned).
uint16_t load16(uint8_t* p, std::memory_order order = std::memory_order_relaxed) {
  return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p)).load(order);
}
void store16(uint8_t* p, uint16_t v, std::memory_order order = std::memory_order_relaxed) {
  std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p)).store(v, order);
}

// A guest physical address as the log shows it: "guest address 0x...".
std::string guest_address(uint64_t gpa) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "guest address %#llx", static_cast<unsigned long long>(gpa));
  return buf;
}

}  // namespace

std::optional<std::string> check_queue_layout(const GuestMemory& mem, const QueueLayout& l,
                                              uint16_t max_size) {
  if (l.size == 0 || !std::has_single_bit(l.size) || l.size > max_size) {
    return "queue size " + std::to_string(l.size) +
           " is not a power of two <= " + std::to_string(max_size);
  }
  // 2.7: descriptor table 16-byte, available ring 2-byte, used ring 4-byte aligned.
  if (l.desc % 16 != 0 || !mem.translate(l.desc, kDescriptorSize * l.size)) {
    return "descriptor table at " + guest_address(l.desc) + " misaligned or outside RAM";
  }
  if (l.driver % 2 != 0 || !mem.translate(l.driver, avail_ring_bytes(l.size))) {
    return "available ring at " + guest_address(l.driver) + " misaligned or outside RAM";
  }
  if (l.device % 4 != 0 || !mem.translate(l.device, used_ring_bytes(l.size))) {
    return "used ring at " + guest_address(l.device) + " misaligned or outside RAM";
  }
  return std::nullopt;
}

SplitQueue::SplitQueue(GuestMemory mem, QueueLayout layout, bool indirect_desc, bool event_idx)
    : mem_(mem), layout_(layout), indirect_(indirect_desc), event_idx_(event_idx) {
  avail_ = mem_.translate(layout_.driver, avail_ring_bytes(layout_.size));
  used_ = mem_.translate(layout_.device, used_ring_bytes(layout_.size));
  if (!avail_ || !used_) {
    avail_ = used_ = nullptr;
    return;
  }
  // Both ring indices start at 0 after reset (2.7); last_avail_, used_idx_
  // and signalled_used_ are zero-initialised to match.
}

// Acquire: the ring entry and descriptors are read only after seeing idx
// (2.7.13.3's read barrier on the device side).
uint16_t SplitQueue::load_avail_idx() const {
  return load16(avail_ + kRingIdx, std::memory_order_acquire);
}

void SplitQueue::publish_avail_event(uint16_t index) {
  // 2.7.10: avail_event tells the driver which index to notify us at.
  store16(used_ + kRingEntries + kUsedEntrySize * layout_.size, index);
}

std::optional<DescriptorChain> SplitQueue::pop() {
  DescriptorChain chain;
  if (!pop_into(chain)) return std::nullopt;
  return chain;
}

bool SplitQueue::pop_into(DescriptorChain& chain) {
  if (!ready() || broken()) return false;
  uint16_t avail_idx = load_avail_idx();
  if (avail_idx == last_avail_ && event_idx_ && notifications_) {
    // Ask for a notification at the next buffer, then look again: the
    // driver may have added one before it saw avail_event (2.7.10).
    publish_avail_event(last_avail_);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    avail_idx = load_avail_idx();
  }
  if (avail_idx == last_avail_) return false;
  if (static_cast<uint16_t>(avail_idx - last_avail_) > layout_.size) {
    broken_reason_ = "available idx " + std::to_string(avail_idx) + " is more than " +
                     std::to_string(layout_.size) + " ahead of " + std::to_string(last_avail_);
    return false;
  }
  const uint16_t slot = last_avail_ % layout_.size;
  const uint16_t head = load16(avail_ + kRingEntries + kAvailEntrySize * slot);
  if (head >= layout_.size) {
    broken_reason_ = "available ring slot " + std::to_string(slot) + " holds head " +
                     std::to_string(head) + " >= queue size " + std::to_string(layout_.size);
    return false;
  }
  ++last_avail_;
  if (event_idx_ && notifications_) publish_avail_event(last_avail_);
  read_descriptor_chain_into(mem_, layout_.desc, layout_.size, head, indirect_, chain);
  return true;
}

uint16_t* SplitQueue::avail_idx_word() const {
  return avail_ ? reinterpret_cast<uint16_t*>(avail_ + kRingIdx) : nullptr;
}

bool SplitQueue::has_available() const {
  return ready() && !broken() && load_avail_idx() != last_avail_;
}

void SplitQueue::set_notifications(bool enabled) {
  if (!ready() || notifications_ == enabled) return;
  notifications_ = enabled;
  if (event_idx_) {
    // Off: one behind the next index the driver will use, so
    // vring_need_event(avail_event, new, old) is false for every publish
    // (until 2^16 more). On: the next index, as after every pop.
    publish_avail_event(enabled ? last_avail_ : static_cast<uint16_t>(last_avail_ - 1));
  } else {
    store16(used_ + kRingFlags, enabled ? 0 : kUsedFlagNoNotify);
  }
  // The driver's next avail idx read comes after this store (2.7.10).
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

void SplitQueue::push_used(uint16_t head, uint32_t len) {
  if (!ready()) return;
  uint8_t* elem = used_ + kRingEntries + kUsedEntrySize * (used_idx_ % layout_.size);
  const uint32_t id = head;
  std::memcpy(elem, &id, sizeof(id));
  std::memcpy(elem + 4, &len, sizeof(len));
  ++used_idx_;
  // Release: the element (and the status byte and data written before it)
  // is visible before the index that publishes it (2.7.14).
  store16(used_ + kRingIdx, used_idx_, std::memory_order_release);
}

bool SplitQueue::needs_interrupt() {
  if (!ready()) return false;
  // Order our used idx store before reading the driver's suppression state.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint16_t old_idx = signalled_used_;
  signalled_used_ = used_idx_;
  if (old_idx == used_idx_) return false;
  if (event_idx_) {
    const uint16_t used_event = load16(avail_ + kRingEntries + kAvailEntrySize * layout_.size);
    return vring_need_event(used_event, used_idx_, old_idx);
  }
  return (load16(avail_ + kRingFlags) & kAvailFlagNoInterrupt) == 0;
}

}  // namespace minivmm::virtio
