// One disk's drain and flush, shared by the graceful stop (VirtioBlk::quiesce)
// and the control API's FlushDisks (host_flush.h), and what the latter
// reports of each disk.
#pragma once

#include <cstdint>

#include "storage/disk.h"

namespace minivmm::virtio::blk {

// One disk after FlushDisks.
struct DiskFlushReport {
  bool flushed = false;  // a flush went to the disk (false: read-only, nothing of ours to flush)
  int error = 0;         // the flush's -errno; 0 when it succeeded
  uint64_t at_risk_bytes = 0;  // acknowledged to the guest, not yet durable (after the flush)
  uint64_t at_risk_requests = 0;
};

// Loop thread: every request in flight on `disk` completes (callbacks
// run), then, unless the disk is read-only, one flush; returns its result
// (0 or -errno). host_sync as DiskRequest::host_sync. The graceful stop
// and FlushDisks both drain and flush through this.
int drain_and_flush(storage::Disk& disk, bool host_sync);

}  // namespace minivmm::virtio::blk
