// The control API's FlushDisks, the building block of backups and
// snapshots: every virtio-blk device stops taking requests from its avail
// rings (what the guest adds meanwhile stays there), every request in
// flight completes and is answered, every writable disk flushes with a
// host fdatasync (in every mode, unsafe included: the operator asked), each
// disk's at-risk counters are read, then the devices take requests again,
// serving what the guest queued meanwhile. It is one task on the devices'
// event-loop thread, so the devices always resume, whether or not the
// caller is still waiting for the answer.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/event_loop.h"
#include "devices/virtio_blk/disk_flush.h"

namespace minivmm::virtio::blk {

class VirtioBlk;

// Any thread but the loop's: FlushDisks over `devices` (all served by
// `loop`), waiting up to `timeout` for it. One report per device, in order;
// nullopt when it did not end in time (it still ends, and the devices
// resume, on the loop thread). The devices must outlive the task: anything
// that destroys them on `loop` afterwards runs after it (FIFO).
std::optional<std::vector<DiskFlushReport>> flush_disks(EventLoop& loop,
                                                        std::vector<VirtioBlk*> devices,
                                                        std::chrono::milliseconds timeout);

}  // namespace minivmm::virtio::blk
