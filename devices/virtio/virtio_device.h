// What a virtio device type (block, ...) implements; the transport
// (VirtioMmioTransport) does the generic parts of virtio 1.x: registers,
// status, feature negotiation and queue setup.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/guest_memory.h"
#include "devices/virtio/split_queue.h"
#include "devices/virtio/transport_signals.h"

namespace minivmm::virtio {

// Handed to the device when the driver sets DRIVER_OK.
struct DeviceActivation {
  GuestMemory memory;
  uint64_t features = 0;                // negotiated
  std::vector<SplitQueue> queues;       // one per device queue; !ready() if the driver left it off
  TransportSignals* signals = nullptr;  // outlives the activation
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  virtual uint32_t device_id() const = 0;
  // Offered features, VERSION_1 and ring features included.
  virtual uint64_t device_features() const = 0;
  virtual uint16_t queue_count() const = 0;
  virtual uint16_t queue_max_size() const = 0;

  // vCPU threads (serialised by the transport). Out-of-range bytes read 0
  // and writes to them are ignored.
  virtual void read_config(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write_config(uint64_t offset, std::span<const uint8_t> data,
                            TransportSignals& signals) = 0;
  // vCPU thread, when the driver sets FEATURES_OK with `negotiated` (already
  // checked to be a subset of device_features() with VERSION_1). False
  // refuses the set: FEATURES_OK then stays clear (3.1.1).
  virtual bool accept_features(uint64_t negotiated) = 0;

  // Event-loop thread.
  virtual void activate(DeviceActivation activation) = 0;
  virtual void notify(uint16_t queue) = 0;
  // Stops all work; when it returns no request is in flight and guest memory
  // is no longer touched. Also called when never activated.
  virtual void reset() = 0;
  // Graceful stop (loop thread, after the vCPUs have stopped): completes
  // every request in flight and makes written data as durable as the
  // device's mode promises.
  virtual void quiesce() = 0;
};

}  // namespace minivmm::virtio
