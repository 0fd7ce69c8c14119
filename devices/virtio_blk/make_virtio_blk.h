// The one call the VMM needs: a virtio-mmio virtio-blk device over `disk`.
#pragma once

#include <memory>

#include "common/guest_memory.h"
#include "devices/virtio/event_loop.h"
#include "devices/virtio/virtio_mmio_transport.h"
#include "devices/virtio_blk/virtio_blk_config.h"
#include "storage/disk.h"

namespace minivmm::virtio::blk {

// `loop` must outlive the returned transport. Throws minivmm::Error for an
// invalid `config` (serial > 20 bytes, num_queues not 1..64, queue_size not
// a power of two in 4..1024).
std::unique_ptr<VirtioMmioTransport> make_virtio_blk(GuestMemory mem,
                                                     std::unique_ptr<storage::Disk> disk,
                                                     VirtioBlkConfig config, EventLoop& loop);

}  // namespace minivmm::virtio::blk
