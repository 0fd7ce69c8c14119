// The one call the VMM needs: a virtio-blk device over `disk`, behind its
// virtio-mmio transport (what is returned is the transport).
#pragma once

#include <memory>

#include "common/event_loop.h"
#include "common/guest_memory.h"
#include "devices/virtio/virtio_mmio_transport.h"
#include "devices/virtio_blk/virtio_blk_options.h"
#include "storage/disk.h"

namespace minivmm::virtio::blk {

// `loop` must outlive the returned transport. Throws minivmm::Error for
// invalid `options` (ID > kMaxIdBytes, num_queues not 1..kMaxQueues,
// queue_size not a power of two in kMinQueueSize..kMaxBlkQueueSize).
std::unique_ptr<VirtioMmioTransport> make_virtio_blk_mmio(GuestMemory mem,
                                                          std::unique_ptr<storage::Disk> disk,
                                                          VirtioBlkOptions options,
                                                          EventLoop& loop);

}  // namespace minivmm::virtio::blk
