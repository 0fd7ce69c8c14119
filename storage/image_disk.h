// The Disk implementation: an ImageFile, a cache mode and an IoEngine.
//
// Durability design (contract: docs/cache-modes.md): the fd never
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
//
// The class's state machines live in one file each: request flow and
// completion rounds (image_disk.cpp), host steps (image_disk_steps.cpp), the
// O_DIRECT bounce step (image_disk_bounce.cpp), durability and the batch
// sync (image_disk_durability.cpp).
#pragma once

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/slot_pool.h"
#include "storage/aligned_buffer.h"
#include "storage/bounce_pool.h"
#include "storage/disk.h"
#include "storage/durability_window.h"
#include "storage/durable_write_batch.h"
#include "storage/image_file.h"
#include "storage/io_engine.h"
#include "storage/sticky_sync_error.h"

namespace minivmm::storage {

class ImageDisk final : public Disk, public DiskStatsSource {
 public:
  // O_DIRECT bounce buffers are at most this large; a longer misaligned
  // transfer goes through it in chunks (memory per request is bounded
  // whatever the guest describes).
  static constexpr uint64_t kBounceChunkBytes = 256 << 10;
  // Bounce buffers per disk, at most, however many queues and requests the
  // guest keeps busy (without a bound, 256 misaligned reads in flight held
  // 64 MiB, and queues x queue size of them ~4 GiB). Requests past it wait,
  // FIFO, for a buffer to come back (bounce_pool.h). 16 transfers of
  // 256 KiB in the host at once already keep a disk streaming, and the pool
  // only fills as far as requests really bounce at once, so a device whose
  // queues hold fewer never reaches it.
  static constexpr size_t kBouncePoolBuffers = 16;
  static constexpr uint64_t kBouncePoolBytes = kBouncePoolBuffers * kBounceChunkBytes;  // 4 MiB
  // drain(): a round can reap nothing while the engine resubmits a short
  // transfer; this many such rounds in a row mean a request the engine does
  // not know about, and drain() fails the engine rather than spin forever.
  static constexpr int kMaxIdleDrainRounds = 64;

  ImageDisk(const DiskOptions& options, ImageFile image, std::unique_ptr<IoEngine> engine);
  ~ImageDisk() override;
  ImageDisk(const ImageDisk&) = delete;
  ImageDisk& operator=(const ImageDisk&) = delete;

  std::string path() const override { return path_; }
  uint64_t size_bytes() const override { return image_.size_bytes; }
  uint32_t logical_block_size() const override { return image_.logical_block_size; }
  bool read_only() const override { return read_only_; }
  CacheMode configured_mode() const override { return mode_; }
  bool write_cache_enabled() const override { return write_cache_; }
  void set_write_cache(bool enabled) override;

  void submit(DiskRequest request) override;
  void kick() override;
  int completion_fd() const override { return engine_->completion_fd(); }
  bool completions_ready() const override { return engine_->completions_ready(); }
  void process_completions() override;
  void drain() override;
  size_t in_flight() const override { return requests_.live(); }
  DiskStats stats() const override { return stats_; }
  // Any thread (SIGUSR1's watcher): stats_ as of the end of the last
  // submit() or completion round on the loop thread.
  DiskStats published_stats() const override;

 private:
  // The kernel operations one request needs, run one after another.
  enum class Step { Transfer, ZeroRange, PunchHole, Allocate, Sync, Nothing };
  // How a write reaches stable storage before it completes (write cache off).
  enum class Durability { NotNeeded, Staged, Dsync, BatchSync };
  // The remaining steps, front first. At most 3 (write-zeroes falling back
  // to punch + allocate, then a sync): inline, no allocation per request.
  struct Steps {
    std::array<Step, 4> items{};
    uint8_t first = 0;
    uint8_t end = 0;
    bool empty() const { return first == end; }
    Step& front() { return items[first]; }
    void pop_front() { ++first; }
    void push_back(Step s) { items[end++] = s; }
    void push_front(Step s);
  };
  struct PendingRequest {
    DiskRequest request;
    uint64_t length = 0;
    Steps steps;
    bool fell_back = false;       // already retried an unsupported fallocate mode
    bool host_discarded = false;  // Discard: the punch really happened
    Durability durability = Durability::NotNeeded;
    AlignedBuffer bounce;  // O_DIRECT copy of misaligned guest buffers, from bounce_pool_
    bool waiting_for_bounce = false;  // in bounce_waiters_, not issued yet
    iovec bounce_iov{};
    uint64_t bounced = 0;                // bytes of the transfer done through `bounce`
    bool at_risk_on_ack = false;         // a successful completion joins the durability window
    DurabilityWindow::Mark sync_covers;  // Step::Sync: the acks its fdatasync covers (at issue)
    std::chrono::steady_clock::time_point flush_received;  // Flush: for the latency histogram
    IoOp op;  // the step in the engine (at most one at a time), with the engine's progress
  };
  using Finished = std::vector<std::pair<std::function<void(int)>, int>>;
  // The batch fdatasync's engine tag; request ids start at 1.
  static constexpr uint64_t kBatchSyncTag = 0;

  bool writes_must_be_durable() const;
  Steps plan(const DiskRequest& request, uint64_t length) const;
  // Request ids come from requests_ (0 is the batch sync's tag).
  PendingRequest* find(uint64_t id);
  void release(uint64_t id);
  bool needs_bounce(const DiskRequest& request) const;
  // A buffer from bounce_pool_ for p's transfer; false when none is free.
  bool take_bounce(PendingRequest& p);
  // At the end of the transfer step (the later steps do not need it).
  void give_back_bounce(PendingRequest& p);
  // A transfer step's completion: copies a bounced chunk and issues the
  // next one (false: the step goes on), else gives the buffer back and sets
  // `result` to what the whole transfer did (true).
  bool finish_bounce_chunk(uint64_t id, PendingRequest& p, int64_t& result);
  // Issues (or stages) waiting requests, oldest first, while buffers are free.
  void resume_bounce_waiters();
  // After a durable write got its route at submit: staged, else issued.
  void stage_or_issue(uint64_t id, PendingRequest& p);
  uint64_t transfer_length(const PendingRequest& p) const;
  void issue(uint64_t id, PendingRequest& p);
  // engine_->prepare, where a throw fails the engine (see fail_engine).
  bool prepare(IoOp& op);
  // The engine's state is unknown after it threw (allocation failure,
  // io_uring_submit error, write-log append failure): every live request
  // fails with -EIO (their buffers are kept: the kernel may still hold
  // them) and so does every later one, so nothing waits forever.
  void fail_engine(const std::string& why);
  void run_orphaned();
  void call_done(const std::function<void(int)>& done, int status);
  // One reap, its follow-up steps and callbacks; returns completions reaped.
  size_t process_round();
  // A failed fdatasync: later flushes and durable writes fail (QEMU does the
  // same; Linux reports a writeback error once, then may report success).
  void note_sync_failure(int64_t result);
  bool refused_by_sticky_error(const DiskRequest& request) const;
  void advance(uint64_t id, int64_t result, Finished& finished);
  void count_step(const PendingRequest& p, Step step, int64_t host_result);
  void issue_staged_writes();
  void start_batch_sync_if_due(Finished& finished);
  void finish_batch_sync(int64_t result, Finished& finished);
  void publish();

  ImageFile image_;
  std::unique_ptr<IoEngine> engine_;
  CacheMode mode_;
  bool read_only_;
  bool write_cache_;
  SlotPool<PendingRequest> requests_;
  std::vector<IoCompletion> completions_;  // reused between calls
  Finished finished_spare_;                // reused between calls
  DiskStats stats_;
  DurabilityWindow window_;
  DurabilityWindow::Mark batch_sync_covers_;  // what the batch sync in flight covers
  IoOp batch_sync_op_;                        // the batch fdatasync (one at a time)
  mutable std::mutex published_mutex_;
  DiskStats published_;  // guarded by published_mutex_

  // Durable-write batching (write cache off), by request id.
  DurableWriteBatch durable_batch_;
  std::vector<uint64_t> staged_spare_;  // issue_staged_writes' list, reused

  BouncePool bounce_pool_;
  std::deque<uint64_t> bounce_waiters_;  // request ids waiting for a bounce buffer, FIFO
  StickySyncError sticky_sync_error_;
  std::string engine_failure_;  // why the engine failed; empty while it works
  // Callbacks of requests failed outside a completion round (fail_engine, a
  // bounce allocation failing in kick), run before that call returns.
  Finished orphaned_;
  std::string path_;  // for log lines
};

}  // namespace minivmm::storage
