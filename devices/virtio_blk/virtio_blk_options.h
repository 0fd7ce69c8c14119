// What the VMM chooses about one virtio-blk device, and the limits on each
// choice (the VMM's disk config validates against these same constants).
// Not the device's config space: that is virtio_blk_config_space.h.
#pragma once

#include <cstdint>
#include <string>

#include "devices/virtio_blk/virtio_blk_spec.h"

namespace minivmm::virtio::blk {

inline constexpr uint32_t kMaxIdBytes = kIdBytes;  // GET_ID answer (5.2.6)
inline constexpr uint32_t kMaxQueues = 64;
inline constexpr uint16_t kMinQueueSize = 4;        // room for header + data + status
inline constexpr uint16_t kMaxBlkQueueSize = 1024;  // a chain's buffers fit one IOV_MAX iovec

struct VirtioBlkOptions {
  std::string id;             // GET_ID answer (the config's disk `serial`), at most kMaxIdBytes
  uint32_t num_queues = 1;    // request queues, 1..kMaxQueues; MQ is offered when > 1
  uint16_t queue_size = 256;  // QueueNumMax: power of two, kMinQueueSize..kMaxBlkQueueSize
};

// How log lines and errors name the device: its ID and image path, never an
// empty name ("virtio-blk : ..." told disks apart by nothing).
inline std::string log_name(const VirtioBlkOptions& o, const std::string& path) {
  std::string name = "virtio-blk";
  if (!o.id.empty()) name += " '" + o.id + "'";
  if (!path.empty()) name += " " + path;
  if (o.id.empty() && path.empty()) name += " (no serial)";
  return name;
}

}  // namespace minivmm::virtio::blk
