#include "tests/devices/virtio/virtio_driver_harness.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <stdexcept>

#include "devices/virtio/mmio_registers.h"
#include "devices/virtio/virtio_constants.h"

namespace minivmm::virtio::testing {

namespace {

void store16(uint8_t* p, uint16_t v) {
  std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p)).store(v, std::memory_order_release);
}
uint16_t load16(const uint8_t* p) {
  return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(const_cast<uint8_t*>(p)))
      .load(std::memory_order_acquire);
}

}  // namespace

GuestRam::GuestRam(uint64_t size)
    : bytes_(static_cast<uint8_t*>(std::aligned_alloc(4096, size))), size_(size) {
  if (!bytes_) throw std::bad_alloc();
  std::memset(bytes_.get(), 0, size_);
}

void GuestRam::clear() {
  std::memset(bytes_.get(), 0, size_);
  next_ = 0;
}

uint64_t GuestRam::alloc(uint64_t size, uint64_t align) {
  next_ = (next_ + align - 1) / align * align;
  if (next_ + size > size_) throw std::runtime_error("test guest RAM exhausted");
  const uint64_t gpa = kBase + next_;
  next_ += size;
  return gpa;
}

VirtioDriverHarness::VirtioDriverHarness(MmioDevice& device, GuestRam& ram, int irq_eventfd,
                                         EventLoop& loop,
                                         std::vector<std::pair<uint32_t, int>> notify_eventfds)
    : device_(device),
      ram_(ram),
      irq_fd_(irq_eventfd),
      loop_(loop),
      notify_fds_(std::move(notify_eventfds)) {}

void VirtioDriverHarness::settle() {
  if (loop_.caller_pumped()) {
    loop_.pump();
    return;
  }
  // A notify eventfd still readable has not been picked up by the loop yet;
  // once none is, a task run on the loop comes after the handler finished.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    std::vector<pollfd> fds;
    for (const auto& [queue, fd] : notify_fds_) fds.push_back({fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), 0) == 0 || std::chrono::steady_clock::now() > deadline) {
      break;
    }
    loop_.run_sync([] {});
  }
  loop_.run_sync([] {});
}

uint32_t VirtioDriverHarness::read32(uint64_t offset) {
  uint32_t v = 0;
  device_.mmio_read(offset, reinterpret_cast<uint8_t*>(&v), 4);
  return v;
}

void VirtioDriverHarness::write32(uint64_t offset, uint32_t value) {
  device_.mmio_write(offset, reinterpret_cast<const uint8_t*>(&value), 4);
}

uint8_t VirtioDriverHarness::read_config8(uint64_t offset) {
  uint8_t v = 0;
  device_.mmio_read(mmio::kConfig + offset, &v, 1);
  return v;
}

uint32_t VirtioDriverHarness::read_config32(uint64_t offset) {
  uint32_t v = 0;
  device_.mmio_read(mmio::kConfig + offset, reinterpret_cast<uint8_t*>(&v), 4);
  return v;
}

uint64_t VirtioDriverHarness::read_config64(uint64_t offset) {
  // Like Linux's virtio-mmio: two 32-bit reads for a 64-bit field.
  return read_config32(offset) | (uint64_t{read_config32(offset + 4)} << 32);
}

void VirtioDriverHarness::write_config8(uint64_t offset, uint8_t value) {
  device_.mmio_write(mmio::kConfig + offset, &value, 1);
}

uint64_t VirtioDriverHarness::device_features() {
  write32(mmio::kDeviceFeaturesSel, 0);
  uint64_t f = read32(mmio::kDeviceFeatures);
  write32(mmio::kDeviceFeaturesSel, 1);
  f |= uint64_t{read32(mmio::kDeviceFeatures)} << 32;
  return f;
}

bool VirtioDriverHarness::negotiate(uint64_t features) {
  reset();
  if (status() != 0) throw std::runtime_error("status not 0 after reset");
  queues_.clear();
  write32(mmio::kStatus, kStatusAcknowledge);
  write32(mmio::kStatus, kStatusAcknowledge | kStatusDriver);
  write32(mmio::kDriverFeaturesSel, 0);
  write32(mmio::kDriverFeatures, static_cast<uint32_t>(features));
  write32(mmio::kDriverFeaturesSel, 1);
  write32(mmio::kDriverFeatures, static_cast<uint32_t>(features >> 32));
  write32(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  return (status() & kStatusFeaturesOk) != 0;
}

void VirtioDriverHarness::setup_queue(uint16_t index, uint16_t size) {
  if (queues_.size() <= index) queues_.resize(index + 1);
  Queue& q = queues_[index];
  q = Queue{};
  q.size = size;
  q.desc = ram_.alloc(16ull * size, 16);
  q.avail = ram_.alloc(6 + 2ull * size, 2);
  q.used = ram_.alloc(6 + 8ull * size, 4);
  write32(mmio::kQueueSel, index);
  if (read32(mmio::kQueueReady) != 0) throw std::runtime_error("queue already ready");
  if (read32(mmio::kQueueNumMax) < size) throw std::runtime_error("queue size above max");
  write32(mmio::kQueueNum, size);
  write32(mmio::kQueueDescLow, static_cast<uint32_t>(q.desc));
  write32(mmio::kQueueDescHigh, static_cast<uint32_t>(q.desc >> 32));
  write32(mmio::kQueueDriverLow, static_cast<uint32_t>(q.avail));
  write32(mmio::kQueueDriverHigh, static_cast<uint32_t>(q.avail >> 32));
  write32(mmio::kQueueDeviceLow, static_cast<uint32_t>(q.used));
  write32(mmio::kQueueDeviceHigh, static_cast<uint32_t>(q.used >> 32));
  write32(mmio::kQueueReady, 1);
}

void VirtioDriverHarness::driver_ok() { write32(mmio::kStatus, status() | kStatusDriverOk); }

void VirtioDriverHarness::write_descriptor(uint16_t queue, uint16_t index, uint64_t addr,
                                           uint32_t len, uint16_t flags, uint16_t next) {
  const Queue& q = queues_.at(queue);
  uint8_t* d = ram_.host(q.desc + 16ull * index);
  std::memcpy(d, &addr, 8);
  std::memcpy(d + 8, &len, 4);
  std::memcpy(d + 12, &flags, 2);
  std::memcpy(d + 14, &next, 2);
}

void VirtioDriverHarness::publish_head(uint16_t queue, uint16_t head) {
  Queue& q = queues_.at(queue);
  store16(ram_.host(q.avail + 4 + 2ull * (q.avail_idx % q.size)), head);
  ++q.avail_idx;
  store16(ram_.host(q.avail + 2), q.avail_idx);  // release: entry before idx
}

void VirtioDriverHarness::set_avail_idx(uint16_t queue, uint16_t idx) {
  Queue& q = queues_.at(queue);
  q.avail_idx = idx;
  store16(ram_.host(q.avail + 2), idx);
}

void VirtioDriverHarness::set_avail_flags(uint16_t queue, uint16_t flags) {
  store16(ram_.host(queues_.at(queue).avail), flags);
}

void VirtioDriverHarness::set_used_event(uint16_t queue, uint16_t value) {
  const Queue& q = queues_.at(queue);
  store16(ram_.host(q.avail + 4 + 2ull * q.size), value);
}

uint16_t VirtioDriverHarness::avail_event(uint16_t queue) const {
  const Queue& q = queues_.at(queue);
  return load16(ram_.host(q.used + 4 + 8ull * q.size));
}

uint16_t VirtioDriverHarness::used_idx(uint16_t queue) const {
  return load16(ram_.host(queues_.at(queue).used + 2));
}

uint16_t VirtioDriverHarness::add_chain(uint16_t queue, const std::vector<Buffer>& buffers,
                                        bool indirect) {
  Queue& q = queues_.at(queue);
  auto flags_of = [](const Buffer& b) -> uint16_t { return b.writable ? kDescFlagWrite : 0; };
  uint16_t head = q.next_desc;
  if (indirect) {
    const uint64_t table = ram_.alloc(16ull * buffers.size(), 16);
    for (size_t i = 0; i < buffers.size(); ++i) {
      const bool more = i + 1 < buffers.size();
      uint8_t* d = ram_.host(table + 16 * i);
      const uint16_t flags = flags_of(buffers[i]) | (more ? kDescFlagNext : 0);
      const uint16_t next = more ? static_cast<uint16_t>(i + 1) : 0;
      std::memcpy(d, &buffers[i].gpa, 8);
      std::memcpy(d + 8, &buffers[i].len, 4);
      std::memcpy(d + 12, &flags, 2);
      std::memcpy(d + 14, &next, 2);
    }
    write_descriptor(queue, head, table, static_cast<uint32_t>(16 * buffers.size()),
                     kDescFlagIndirect, 0);
    q.next_desc = (q.next_desc + 1) % q.size;
  } else {
    for (size_t i = 0; i < buffers.size(); ++i) {
      const uint16_t index = q.next_desc;
      q.next_desc = (q.next_desc + 1) % q.size;
      const bool more = i + 1 < buffers.size();
      write_descriptor(queue, index, buffers[i].gpa, buffers[i].len,
                       flags_of(buffers[i]) | (more ? kDescFlagNext : 0), more ? q.next_desc : 0);
    }
  }
  publish_head(queue, head);
  return head;
}

void VirtioDriverHarness::collect_interrupts() {
  uint64_t count = 0;
  if (::read(irq_fd_, &count, sizeof(count)) == sizeof(count) && count > 0) {
    interrupts_ += count;
    // What Linux's vm_interrupt does: read the cause, acknowledge it.
    last_isr_ = read32(mmio::kInterruptStatus);
    write32(mmio::kInterruptAck, last_isr_);
  }
}

uint64_t VirtioDriverHarness::interrupts() {
  collect_interrupts();
  return interrupts_;
}

std::vector<UsedElement> VirtioDriverHarness::wait_used(uint16_t queue, size_t count,
                                                        std::chrono::milliseconds timeout) {
  Queue& q = queues_.at(queue);
  std::vector<UsedElement> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < count) {
    const uint16_t idx = used_idx(queue);
    while (q.last_used != idx && out.size() < count) {
      const uint8_t* e = ram_.host(q.used + 4 + 8ull * (q.last_used % q.size));
      UsedElement u;
      std::memcpy(&u.id, e, 4);
      std::memcpy(&u.len, e + 4, 4);
      out.push_back(u);
      ++q.last_used;
    }
    if (out.size() >= count) break;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    // Sleep on the irq eventfd; the used ring is re-checked either way
    // (suppressed interrupts are part of what tests exercise).
    collect_interrupts();  // drained, so poll() below really sleeps
    pollfd p{irq_fd_, POLLIN, 0};
    ::poll(&p, 1, 10);
  }
  return out;
}

}  // namespace minivmm::virtio::testing
