// What the VMM chooses about one virtio-blk device.
#pragma once

#include <cstdint>
#include <string>

namespace minivmm::virtio::blk {

struct VirtioBlkConfig {
  std::string serial;         // GET_ID answer, at most 20 bytes
  uint32_t num_queues = 1;    // request queues; MQ is offered when > 1
  uint16_t queue_size = 256;  // QueueNumMax: power of two, 4..1024
};

// How log lines and errors name the device: its serial and image path,
// never an empty name ("virtio-blk : ..." told disks apart by nothing).
inline std::string log_name(const VirtioBlkConfig& c, const std::string& path) {
  std::string name = "virtio-blk";
  if (!c.serial.empty()) name += " '" + c.serial + "'";
  if (!path.empty()) name += " " + path;
  if (c.serial.empty() && path.empty()) name += " (no serial)";
  return name;
}

}  // namespace minivmm::virtio::blk
