// What the control API can see and do to the running VM: the interface the
// router (router.h) calls, implemented over the real machine by
// machine_control.h and by fakes in tests. Every member is called on the
// API server's thread and must never block on a vCPU or the I/O loop for
// long.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "storage/disk.h"

namespace minivmm::api {

enum class VmState { kRunning, kPaused, kStopping };

// One disk as GET /drives shows it: its configuration and its counters.
struct DriveReport {
  std::string drive_id;      // the disk's index in config order: "0", "1", ...
  std::string path_on_host;  // the image
  bool is_read_only = false;
  std::string cache_type;  // the cache mode: writeback, none, writethrough, directsync, unsafe
  std::string io_engine;   // auto, io_uring, sync
  std::string serial;      // the virtio-blk ID ("" when none)
  uint32_t num_queues = 1;
  storage::DiskStats stats;  // a snapshot the disk's loop thread published
};

// One disk after PUT /actions FlushDisks.
struct DriveFlush {
  std::string drive_id;  // as DriveReport's
  std::string path_on_host;
  std::string cache_type;
  bool flushed = false;        // false: read-only, nothing to flush
  int error = 0;               // the flush's -errno; 0 when it succeeded
  uint64_t at_risk_bytes = 0;  // after the flush: 0 unless it failed
  uint64_t at_risk_requests = 0;
};

struct FlushDisksResult {
  std::string refused;  // why it did not start (a 400's message); "" when it ran
  // It did not end within `waited` (the disks still resume when it ends).
  bool timed_out = false;
  std::chrono::milliseconds waited{0};
  std::vector<DriveFlush> drives;  // config order, when it ended in time
};

class VmControl {
 public:
  virtual ~VmControl() = default;
  virtual std::string id() const = 0;  // this VMM instance
  virtual VmState state() const = 0;
  virtual uint64_t uptime_ms() const = 0;
  virtual nlohmann::json config() const = 0;  // the effective configuration
  virtual std::vector<DriveReport> drives() const = 0;
  // Each returns "" when done, else why it could not be (a 400's message).
  virtual std::string pause() = 0;   // every vCPU out of KVM_RUN and waiting
  virtual std::string resume() = 0;  // the vCPUs run again
  virtual std::string stop() = 0;    // the graceful stop SIGTERM starts
  // Quiesces every disk, flushes it to the host and resumes (docs/api.md).
  virtual FlushDisksResult flush_disks() = 0;
};

const char* state_name(VmState state);

}  // namespace minivmm::api
