// The seam between a Disk and the kernel: an IoEngine takes file operations,
// pushes them to the kernel in one batch per kick(), and reports completions
// through its completion fd (the io_uring ring fd, or an eventfd). Two real engines (io_uring,
// synchronous) and a recording decorator implement it, so the disk code path is identical over all
// three.
//
// Engines finish every operation completely before reporting it: short
// reads/writes are resubmitted for the remainder and -EAGAIN/-EINTR retried,
// so a completion's result is the full byte count (or 0) or a -errno.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "storage/disk.h"
#include "storage/io_op.h"

namespace minivmm::storage {

class IoEngine {
 public:
  virtual ~IoEngine() = default;
  virtual std::string_view name() const = 0;
  // Queues `op`; nothing reaches the kernel before kick(). The engine keeps
  // a pointer to it and works on its `progress` until its completion is
  // reaped: the caller keeps it in place and leaves it alone until then.
  virtual void prepare(IoOp& op) = 0;
  // Submits everything queued, as one batch where the engine can.
  virtual void kick() = 0;
  // Readable whenever completions may be waiting; Disk::completion_fd()
  // hands it to the event loop (one name for the fd on both layers).
  virtual int completion_fd() const = 0;
  // Cheap check (no system call) that reap() has something, for a polling
  // loop; an engine without one answers false and is woken by completion_fd().
  virtual bool completions_ready() const { return false; }
  // Appends the completions available now; never blocks.
  virtual void reap(std::vector<IoCompletion>& out) = 0;
  // Blocks until reap() would return something, or returns at once when
  // nothing is outstanding.
  virtual void wait() = 0;
};

// Most bytes the synchronous engine moves per kick(), so one huge request
// cannot hold the event-loop thread; the virtio-blk
// size_max (one segment) is of the same order.
inline constexpr uint64_t kSyncBytesPerKick = 1 << 20;

// Ring depth of the io_uring engine; operations beyond it wait in a queue.
inline constexpr unsigned kDefaultQueueDepth = 128;

std::unique_ptr<IoEngine> make_sync_engine();
// Throws minivmm::Error (with the reason) when io_uring cannot be used.
std::unique_ptr<IoEngine> make_uring_engine(unsigned queue_depth = kDefaultQueueDepth);
// Auto: io_uring when it initialises and supports every op we need, else the
// synchronous engine, with one spdlog warning saying why.
std::unique_ptr<IoEngine> make_io_engine(IoEngineKind kind,
                                         unsigned queue_depth = kDefaultQueueDepth);

std::string_view to_string(IoOp::Kind kind);

}  // namespace minivmm::storage
