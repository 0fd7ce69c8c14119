// virtio-mmio transport, register layout version 2 (virtio 1.x 4.2.2), for
// any VirtioDevice. Register accesses come from vCPU threads and are
// serialised by a mutex; queue work runs on the EventLoop. Queue
// notifications arrive on one eventfd per queue, interrupts leave through
// one irq eventfd.
//
// VMM wiring (per device at MMIO base B, guest IRQ line G):
//   KVM_IOEVENTFD {addr = B + 0x50, len = 4, datamatch = queue, fd} for each
//     queue_notify_eventfds() entry (optional: a trapped write to
//     QueueNotify signals the same eventfd);
//   KVM_IRQFD {fd = irq_eventfd(), gsi = G};
//   route MMIO exits in [B, B + mmio::kWindowSize) to mmio_read/mmio_write.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "common/event_loop.h"
#include "common/guest_memory.h"
#include "common/mmio_device.h"
#include "common/unique_fd.h"
#include "devices/virtio/rate_limited_log.h"
#include "devices/virtio/split_queue.h"
#include "devices/virtio/transport_signals.h"
#include "devices/virtio/virtio_device.h"

namespace minivmm::virtio {

class VirtioMmioTransport : public MmioDevice {
 public:
  VirtioMmioTransport(GuestMemory mem, std::unique_ptr<VirtioDevice> device, EventLoop& loop);
  ~VirtioMmioTransport() override;
  VirtioMmioTransport(const VirtioMmioTransport&) = delete;
  VirtioMmioTransport& operator=(const VirtioMmioTransport&) = delete;

  void mmio_read(uint64_t offset, uint8_t* data, uint32_t len) override;
  void mmio_write(uint64_t offset, const uint8_t* data, uint32_t len) override;

  int irq_eventfd() const { return signals_.irq_eventfd(); }
  // (queue index, eventfd) for KVM_IOEVENTFD with datamatch = queue index.
  std::vector<std::pair<uint32_t, int>> queue_notify_eventfds() const;

  VirtioDevice& device() { return *device_; }
  // Graceful stop: runs the device's quiesce() on the event loop and waits.
  void quiesce();

 private:
  struct QueueRegisters {
    QueueLayout layout;
    bool ready = false;
  };

  uint32_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint32_t value);
  void write_status(uint32_t value);
  bool features_acceptable(uint64_t driver_features);
  void activate();
  void reset();
  void on_queue_notify(uint16_t queue);
  QueueRegisters* selected_queue();

  GuestMemory mem_;
  std::unique_ptr<VirtioDevice> device_;
  EventLoop& loop_;
  TransportSignals signals_;
  RateLimitedLog log_;

  std::mutex mutex_;  // guards the register state below (vCPU threads)
  uint32_t status_ = 0;
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_sel_ = 0;
  std::vector<QueueRegisters> queues_;

  bool active_ = false;  // event-loop thread only: device activated
  std::vector<UniqueFd> notify_fds_;
  std::vector<EventLoop::Handle> notify_handles_;
};

}  // namespace minivmm::virtio
