// What the VMM chooses about one virtio-blk device.
#pragma once

#include <cstdint>
#include <string>

namespace minivmm::virtio::blk {

struct VirtioBlkConfig {
  std::string serial;        // GET_ID answer, at most 20 bytes
  uint32_t num_queues = 1;   // request queues; MQ is offered when > 1
  uint16_t queue_size = 256; // QueueNumMax: power of two, 4..1024
};

}  // namespace minivmm::virtio::blk
