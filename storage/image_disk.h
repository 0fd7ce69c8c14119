// The Disk implementation: an ImageFile, a cache mode and an IoEngine.
//
// Durability design (contract: ../shared/docs/cache-modes.md): the fd never
// carries O_DSYNC. While the guest-visible write cache is off (writethrough,
// directsync, or a guest that turned WCE off) every write is durable before
// it completes, by one of two routes chosen at kick():
//  - a lone write (nothing else durable in flight) goes out with RWF_DSYNC:
//    one host operation, the lowest latency at queue depth 1;
//  - writes kicked together, or joining durable writes already in flight, go
//    out plain; once none of them is still in the host, one fdatasync is
//    issued for all that completed, and they complete to the guest only
//    after it succeeds (QEMU's FUA emulation with coalesced flushes: one
//    sync per batch instead of one per write).
// That lets set_write_cache() switch semantics at run time without
// reopening. O_DIRECT (none, directsync) is fixed at open and shows in
// /proc/self/fdinfo.
// Flushes: fdatasync whenever the mode honours flushes, also with the write
// cache off (cheap then, and it covers writes issued before a WCE switch);
// unsafe completes them at once without any syscall.
#pragma once

#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "storage/aligned_buffer.h"
#include "storage/disk.h"
#include "storage/image_file.h"
#include "storage/io_engine.h"

namespace minivmm::storage {

class ImageDisk final : public Disk {
 public:
  ImageDisk(const DiskOptions& options, ImageFile image, std::unique_ptr<IoEngine> engine);
  ~ImageDisk() override;
  ImageDisk(const ImageDisk&) = delete;
  ImageDisk& operator=(const ImageDisk&) = delete;

  uint64_t size_bytes() const override { return image_.size_bytes; }
  uint32_t logical_block_size() const override { return image_.logical_block_size; }
  bool read_only() const override { return read_only_; }
  CacheMode configured_mode() const override { return mode_; }
  bool write_cache_enabled() const override { return write_cache_; }
  void set_write_cache(bool enabled) override;

  void submit(DiskRequest request) override;
  void kick() override;
  int completion_fd() const override { return engine_->event_fd(); }
  void process_completions() override;
  void drain() override;
  size_t in_flight() const override { return requests_.size(); }
  DiskStats stats() const override { return stats_; }

 private:
  // The kernel operations one request needs, run one after another.
  enum class Step { Transfer, ZeroRange, PunchHole, Allocate, Sync, Nothing };
  // How a write reaches stable storage before it completes (write cache off).
  enum class Durability { NotNeeded, Staged, Dsync, BatchSync };
  struct Pending {
    DiskRequest request;
    uint64_t length = 0;
    std::vector<Step> steps;  // remaining, front first
    bool fell_back = false;   // already retried an unsupported fallocate mode
    bool host_discarded = false;  // Discard: the punch really happened
    Durability durability = Durability::NotNeeded;
    AlignedBuffer bounce;     // O_DIRECT copy of misaligned guest buffers
    iovec bounce_iov{};
  };
  using Finished = std::vector<std::pair<std::function<void(int)>, int>>;

  bool writes_must_be_durable() const;
  std::vector<Step> plan(const DiskRequest& request, uint64_t length) const;
  bool needs_bounce(const DiskRequest& request) const;
  void issue(uint64_t id, Pending& p);
  void advance(uint64_t id, int64_t result, Finished& finished);
  void count_step(const Pending& p, Step step, int64_t host_result);
  void issue_staged_writes();
  void start_batch_sync_if_due();
  void finish_batch_sync(int64_t result, Finished& finished);

  ImageFile image_;
  std::unique_ptr<IoEngine> engine_;
  CacheMode mode_;
  bool read_only_;
  bool write_cache_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Pending>> requests_;
  std::vector<IoCompletion> completions_;  // reused between calls
  DiskStats stats_;

  // Durable-write batching (write cache off), by request id.
  std::vector<uint64_t> staged_writes_;    // submitted, route decided at kick()
  std::vector<uint64_t> awaiting_sync_;    // batch writes done, need an fdatasync
  std::vector<uint64_t> covered_by_sync_;  // ... covered by the one in flight
  bool batch_sync_in_flight_ = false;
  size_t durable_in_host_ = 0;  // Dsync/BatchSync writes issued, not completed
  size_t batch_in_host_ = 0;    // BatchSync writes issued, not completed
};

}  // namespace minivmm::storage
