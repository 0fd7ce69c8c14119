// The storage layer's public face: one open disk image (raw file or host block
// device) with a cache mode. The virtio-blk device talks only to this.
//
// Threading: a Disk is used from one thread (the device's event-loop thread).
// Requests are queued with submit(), pushed to the kernel in one batch by
// kick(), and completed by process_completions(), which the event loop calls
// when completion_fd() becomes readable.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "storage/cache_mode.h"
#include "storage/disk_stats.h"
#include "storage/image_format.h"
#include "storage/request_type.h"

namespace minivmm::storage {

enum class IoEngineKind { Auto, IoUring, Sync };

struct DiskOptions {
  std::string path;
  CacheMode cache = CacheMode::Writeback;
  bool read_only = false;
  IoEngineKind engine = IoEngineKind::Auto;
  ImageFormat format = ImageFormat::Auto;
  // Power-loss simulation: path of a write log (write_log_format.h) of every
  // write, flush and completion; empty = off.
  std::string write_log;
};

struct DiskRequest {
  RequestType op = RequestType::Read;
  uint64_t offset = 0;  // bytes from the start of the image
  // Read/Write: host buffers (guest memory). Not owned: the iovec array and
  // the buffers stay valid until `done` has run (the caller keeps them, so a
  // request costs the storage layer no allocation).
  std::span<const iovec> iov;
  uint64_t length = 0;  // Discard/WriteZeroes: bytes
  bool unmap = false;   // WriteZeroes: may deallocate
  // Flush: an fdatasync on the host even where the mode ignores the guest's
  // flushes (unsafe). The operator's explicit flush (the control API's
  // FlushDisks) asks for it; the guest's flushes never do.
  bool host_sync = false;
  // Called exactly once, from process_completions() (or from submit() for
  // requests rejected up front): 0 on success, -errno on failure.
  std::function<void(int result)> done;
};

class Disk {
 public:
  virtual ~Disk() = default;

  // Opens and validates the image; throws minivmm::Error naming the path and
  // the reason (missing, unreadable, directory, locked by another VMM, ...).
  static std::unique_ptr<Disk> open(const DiskOptions& options);

  // The image path, for log lines (empty where there is none).
  virtual std::string path() const { return {}; }
  virtual uint64_t size_bytes() const = 0;
  virtual uint32_t logical_block_size() const = 0;
  virtual bool read_only() const = 0;
  virtual CacheMode configured_mode() const = 0;

  // Current write-cache state as presented to the guest. Starts from the
  // mode's traits; the guest may toggle it (virtio-blk CONFIG_WCE writeback
  // byte): writethrough <-> writeback and directsync <-> none.
  virtual bool write_cache_enabled() const = 0;
  virtual void set_write_cache(bool enabled) = 0;

  virtual void submit(DiskRequest request) = 0;
  virtual void kick() = 0;
  virtual int completion_fd() const = 0;
  // Cheap check (no system call) for a polling loop that
  // process_completions() has work; false where the disk cannot tell.
  virtual bool completions_ready() const { return false; }
  virtual void process_completions() = 0;
  // Blocks until every submitted request has completed (callbacks run).
  virtual void drain() = 0;
  virtual size_t in_flight() const = 0;

  // Loop thread.
  virtual DiskStats stats() const = 0;
};

}  // namespace minivmm::storage
