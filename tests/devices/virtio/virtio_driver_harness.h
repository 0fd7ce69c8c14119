// A host-side stand-in for the Linux virtio-mmio driver: owns a block of
// "guest RAM", programs the transport registers in the order Linux does
// (reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queues, DRIVER_OK),
// lays out split rings, adds direct and indirect chains, notifies, and
// reads back the used ring. All waits have a deadline so tests never hang.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "common/event_loop.h"
#include "common/guest_memory.h"
#include "common/mmio_device.h"

namespace minivmm::virtio::testing {

// Page-aligned memory posing as guest RAM at a non-zero guest address.
class GuestRam {
 public:
  static constexpr uint64_t kBase = 0x40000000;
  explicit GuestRam(uint64_t size = 4 << 20);
  GuestMemory memory() const { return GuestMemory(bytes_.get(), {.base = kBase, .size = size_}); }
  uint8_t* host(uint64_t gpa) const { return bytes_.get() + (gpa - kBase); }
  // Bump allocator; never frees (tests are short).
  uint64_t alloc(uint64_t size, uint64_t align = 16);
  // Zeroes the memory and forgets every allocation: one GuestRam serves many
  // fuzz inputs without new page faults each time.
  void clear();
  uint64_t end() const { return kBase + size_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> bytes_;
  uint64_t size_;
  uint64_t next_ = 0;
};

struct Buffer {
  uint64_t gpa = 0;
  uint32_t len = 0;
  bool writable = false;
};

struct UsedElement {
  uint32_t id = 0;
  uint32_t len = 0;
};

class VirtioDriverHarness {
 public:
  // `notify_eventfds`: the transport's queue notify eventfds, so settle()
  // can wait for notifications still queued in them.
  VirtioDriverHarness(MmioDevice& device, GuestRam& ram, int irq_eventfd, EventLoop& loop,
                      std::vector<std::pair<uint32_t, int>> notify_eventfds = {});

  uint32_t read32(uint64_t offset);
  void write32(uint64_t offset, uint32_t value);
  uint8_t read_config8(uint64_t offset);
  uint32_t read_config32(uint64_t offset);
  uint64_t read_config64(uint64_t offset);
  void write_config8(uint64_t offset, uint8_t value);

  uint64_t device_features();
  // Reset, ACKNOWLEDGE, DRIVER, write `features`, set FEATURES_OK and read it
  // back: true when the device accepted the features.
  bool negotiate(uint64_t features);
  // Allocates and programs queue `index` with `size` entries, QueueReady = 1.
  void setup_queue(uint16_t index, uint16_t size);
  void driver_ok();
  void reset() { write32(0x070, 0); }
  uint32_t status() { return read32(0x070); }

  // Adds a chain to the available ring and publishes it (without
  // notifying). Indirect chains use one ring descriptor pointing at a table.
  uint16_t add_chain(uint16_t queue, const std::vector<Buffer>& buffers, bool indirect = false);
  // Low-level access for hostile tests.
  void write_descriptor(uint16_t queue, uint16_t index, uint64_t addr, uint32_t len, uint16_t flags,
                        uint16_t next);
  void publish_head(uint16_t queue, uint16_t head);  // ring entry + idx++
  void set_avail_idx(uint16_t queue, uint16_t idx);
  void set_avail_flags(uint16_t queue, uint16_t flags);
  void set_used_event(uint16_t queue, uint16_t value);
  uint16_t avail_event(uint16_t queue) const;
  uint16_t used_idx(uint16_t queue) const;
  uint16_t avail_idx(uint16_t queue) const { return queues_.at(queue).avail_idx; }

  void notify(uint16_t queue) { write32(0x050, queue); }

  // Waits (up to `timeout`) until `count` more used entries than already
  // consumed appear; returns those seen (fewer on timeout).
  std::vector<UsedElement> wait_used(uint16_t queue, size_t count,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Waits until the event loop has consumed every queue notification sent
  // so far and finished handling it, so interrupt counts and device state
  // are settled when the test looks.
  void settle();
  // Interrupts received on the irq eventfd so far (reads the eventfd and,
  // like Linux's handler, acknowledges InterruptStatus).
  uint64_t interrupts();
  uint32_t last_interrupt_status() const { return last_isr_; }

  GuestRam& ram() { return ram_; }

 private:
  struct Queue {
    uint16_t size = 0;
    uint64_t desc = 0, avail = 0, used = 0;
    uint16_t next_desc = 0;
    uint16_t avail_idx = 0;
    uint16_t last_used = 0;
  };
  void collect_interrupts();

  MmioDevice& device_;
  GuestRam& ram_;
  int irq_fd_;
  EventLoop& loop_;
  std::vector<std::pair<uint32_t, int>> notify_fds_;
  std::vector<Queue> queues_;
  uint64_t interrupts_ = 0;
  uint32_t last_isr_ = 0;
};

}  // namespace minivmm::virtio::testing
