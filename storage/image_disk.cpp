#include "storage/image_disk.h"

#include <fcntl.h>
#include <linux/falloc.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "storage/iov_cursor.h"
#include "storage/request_checks.h"

namespace minivmm::storage {

namespace {

// The batch fdatasync's engine tag; request ids start at 1.
constexpr uint64_t kBatchSyncTag = 0;

// O_DIRECT needs the buffer aligned to the device's DMA alignment and block.
size_t bounce_alignment(const ImageFile& image) {
  return std::max<size_t>({4096, image.logical_block_size, image.memory_alignment});
}

}  // namespace

ImageDisk::ImageDisk(const DiskOptions& options, ImageFile image, std::unique_ptr<IoEngine> engine)
    : image_(std::move(image)),
      engine_(std::move(engine)),
      mode_(options.cache),
      read_only_(options.read_only),
      write_cache_(traits(options.cache).write_cache),
      bounce_pool_({.capacity = kBouncePoolBuffers,
                    .buffer_bytes = kBounceChunkBytes,
                    .alignment = bounce_alignment(image_)}),
      path_(options.path) {
  register_disk_stats(this);
}

ImageDisk::~ImageDisk() {
  unregister_disk_stats(this);  // first: no reader may see a disk going away
  // Bounce buffers and guest memory must outlive the kernel's use of them:
  // drain, then close the engine before the request slots go.
  try {
    drain();
    engine_.reset();
  } catch (const std::exception& e) {
    spdlog::error("storage: {}: draining disk at close failed: {}", path_, e.what());
  }
}

DiskStats ImageDisk::published_stats() const {
  const std::lock_guard lock(published_mutex_);
  return published_;
}

void ImageDisk::publish() {
  stats_.at_risk_bytes = window_.at_risk_bytes();
  stats_.at_risk_requests = window_.at_risk_requests();
  const std::lock_guard lock(published_mutex_);
  published_ = stats_;
}

bool ImageDisk::writes_must_be_durable() const {
  return !write_cache_ && traits(mode_).flush_honoured;
}

void ImageDisk::set_write_cache(bool enabled) {
  // writethrough <-> writeback and directsync <-> none: only per-write
  // durability changes; O_DIRECT stays as opened (contract, QEMU rules).
  write_cache_ = enabled;
}

void ImageDisk::Steps::push_front(Step s) {
  if (first == 0) {
    std::copy_backward(items.begin(), items.begin() + end, items.begin() + end + 1);
    ++end;
    ++first;
  }
  items[--first] = s;
}

ImageDisk::Steps ImageDisk::plan(const DiskRequest& request, uint64_t length) const {
  Steps steps;
  if (request.op == RequestType::Flush) {
    // unsafe ignores the guest's flushes (not a host_sync one); a read-only
    // disk has nothing of ours to flush.
    const bool sync = traits(mode_).flush_honoured || request.host_sync;
    steps.push_back(sync && !read_only_ ? Step::Sync : Step::Nothing);
    return steps;
  }
  if (length == 0) {
    steps.push_back(Step::Nothing);
    return steps;
  }
  switch (request.op) {
    case RequestType::Read:
    case RequestType::Write:  // a write's durability: see issue_staged_writes()
      steps.push_back(Step::Transfer);
      return steps;
    case RequestType::Discard:
    case RequestType::WriteZeroes: {
      const bool punch = request.op == RequestType::Discard || request.unmap;
      steps.push_back(punch ? Step::PunchHole : Step::ZeroRange);
      // fallocate has no DSYNC flag: follow it with fdatasync.
      if (writes_must_be_durable()) steps.push_back(Step::Sync);
      return steps;
    }
    case RequestType::Flush: break;
  }
  steps.push_back(Step::Nothing);
  return steps;
}

ImageDisk::PendingRequest* ImageDisk::find(uint64_t id) { return requests_.find(id); }

void ImageDisk::release(uint64_t id) {
  PendingRequest& p = requests_[id];
  // Back to a fresh state, keeping the object (and no guest pointers).
  p.request.iov = {};
  p.request.done = nullptr;
  p.steps = Steps{};
  p.fell_back = false;
  p.host_discarded = false;
  p.durability = Durability::NotNeeded;
  p.at_risk_on_ack = false;
  p.sync_covers = {};
  p.waiting_for_bounce = false;
  give_back_bounce(p);
  requests_.release(id);
}

bool ImageDisk::needs_bounce(const DiskRequest& request) const {
  if (!traits(mode_).direct) return false;
  const uint64_t mem_align = image_.memory_alignment;
  const uint64_t block = image_.logical_block_size;
  return std::any_of(request.iov.begin(), request.iov.end(), [&](const iovec& v) {
    return reinterpret_cast<uintptr_t>(v.iov_base) % mem_align != 0 || v.iov_len % block != 0;
  });
}

bool ImageDisk::take_bounce(PendingRequest& p) {
  // One chunk, reused for the whole transfer: memory per request is bounded
  // whatever length the guest describes; the pool bounds it per disk.
  p.bounce = bounce_pool_.take();
  if (!p.bounce.data()) return false;
  const uint64_t held = uint64_t{bounce_pool_.taken()} * bounce_pool_.buffer_bytes();
  stats_.bounce_bytes_peak = std::max(stats_.bounce_bytes_peak, held);
  return true;
}

void ImageDisk::give_back_bounce(PendingRequest& p) {
  bounce_pool_.give_back(std::move(p.bounce));
  p.bounce = AlignedBuffer();
  p.bounce_iov = {};
  p.bounced = 0;
}

void ImageDisk::stage_or_issue(uint64_t id, PendingRequest& p) {
  if (p.durability == Durability::Staged) {
    durable_batch_.stage(id);  // the route depends on the batch: kick()
    return;
  }
  issue(id, p);
}

void ImageDisk::resume_bounce_waiters() {
  // Every buffer taken belongs to a transfer in the engine (or staged, and
  // issued by this kick()), so one comes back whenever a transfer ends and
  // the oldest waiter goes next: no waiter waits forever.
  while (!bounce_waiters_.empty() && engine_failure_.empty()) {
    const uint64_t id = bounce_waiters_.front();
    PendingRequest* p = find(id);
    if (!p || !p->waiting_for_bounce) {
      bounce_waiters_.pop_front();
      continue;
    }
    try {
      if (!take_bounce(*p)) return;
    } catch (const std::exception& e) {
      spdlog::error("storage: {}: request failed before reaching the host: {}", path_, e.what());
      bounce_waiters_.pop_front();
      orphaned_.emplace_back(std::move(p->request.done), -EIO);
      release(id);
      continue;
    }
    bounce_waiters_.pop_front();
    p->waiting_for_bounce = false;
    stage_or_issue(id, *p);
  }
}

uint64_t ImageDisk::transfer_length(const PendingRequest& p) const {
  return p.bounce.data() ? std::min<uint64_t>(p.bounce.size(), p.length - p.bounced) : p.length;
}

bool ImageDisk::refused_by_sticky_error(const DiskRequest& request) const {
  if (sticky_sync_error_.error() == 0) return false;
  if (request.op == RequestType::Flush) {
    return (traits(mode_).flush_honoured || request.host_sync) && !read_only_;
  }
  return request.op != RequestType::Read && writes_must_be_durable();
}

void ImageDisk::submit(DiskRequest request) {
  // Of the published counters only flush_requests changes here; the rest
  // change in completion rounds, which publish (a mutex per request saved).
  const bool flush = request.op == RequestType::Flush;
  struct PublishOnExit {
    ImageDisk* disk;
    bool due;
    ~PublishOnExit() {
      if (due) disk->publish();
    }
  } publish_on_exit{this, flush};
  const auto received =
      flush ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  if (flush) ++stats_.flush_requests;
  const ImageLimits limits{image_.size_bytes, image_.logical_block_size, read_only_};
  int err = check_request(request, limits);
  if (err == 0 && !engine_failure_.empty()) err = -EIO;
  if (err == 0 && refused_by_sticky_error(request)) err = sticky_sync_error_.error();
  if (err != 0) {
    if (request.done) request.done(err);
    return;
  }
  bool overflow = false;
  const uint64_t length = request_length(request, overflow);
  uint64_t id = 0;
  bool moved = false;  // `request` now lives in the slot
  try {
    id = requests_.take();
    PendingRequest& ref = requests_[id];
    ref.steps = plan(request, length);
    ref.length = length;
    ref.request = std::move(request);
    moved = true;
    const RequestType op = ref.request.op;
    if (op == RequestType::Flush) ref.flush_received = received;
    // Not durable before it completes: the write cache is on, or the mode
    // ignores flushes (plan() adds a Sync / kick() a durable route otherwise).
    ref.at_risk_on_ack = (op == RequestType::Write || op == RequestType::WriteZeroes) &&
                         length > 0 && !writes_must_be_durable();
    const bool transfer = ref.steps.front() == Step::Transfer;
    if (transfer && ref.request.op == RequestType::Write && writes_must_be_durable()) {
      ref.durability = Durability::Staged;
    }
    // Behind earlier waiters, never past them (FIFO).
    if (transfer && needs_bounce(ref.request) && (!bounce_waiters_.empty() || !take_bounce(ref))) {
      bounce_waiters_.push_back(id);
      ref.waiting_for_bounce = true;
      ++stats_.bounce_waits;
      return;
    }
    stage_or_issue(id, ref);
  } catch (const std::exception& e) {
    // Allocation failure: this request fails, nothing stays live.
    spdlog::error("storage: {}: request failed before reaching the host: {}", path_, e.what());
    auto done = moved ? std::move(requests_[id].request.done) : std::move(request.done);
    if (id != 0 && requests_.find(id)) release(id);
    if (done) done(-EIO);
  }
  run_orphaned();
}

bool ImageDisk::prepare(const IoOp& op) {
  try {
    engine_->prepare(op);
    return true;
  } catch (const std::exception& e) {
    fail_engine(std::string("prepare: ") + e.what());
    return false;
  }
}

void ImageDisk::fail_engine(const std::string& why) {
  if (engine_failure_.empty()) {
    engine_failure_ = why;
    spdlog::error(
        "storage: {}: I/O engine failed ({}); {} requests in flight and every later "
        "one fail with EIO until restart",
        path_, why, requests_.live());
  }
  for (uint64_t id = 1; id < requests_.end_id(); ++id) {
    PendingRequest* p = requests_.find(id);
    if (!p) continue;
    // Abandoned, never reused (the disk takes no new requests), so its
    // bounce buffer stays valid for a kernel that may still write it.
    orphaned_.emplace_back(std::move(p->request.done), -EIO);
    requests_.abandon(id);
  }
  durable_batch_.forget_requests();
  bounce_waiters_.clear();
}

void ImageDisk::call_done(const std::function<void(int)>& done, int status) {
  if (!done) return;
  try {
    done(status);
  } catch (const std::exception& e) {
    // One failing callback must not strand the others' completions.
    spdlog::error("storage: {}: completion callback failed: {}", path_, e.what());
  }
}

void ImageDisk::run_orphaned() {
  if (orphaned_.empty()) return;
  Finished orphans;
  orphans.swap(orphaned_);
  for (auto& [done, status] : orphans) call_done(done, status);
}

void ImageDisk::note_sync_failure(int64_t result) {
  if (!sticky_sync_error_.note(result)) return;
  spdlog::error(
      "storage: {}: fdatasync failed ({}); the host may have dropped written data, so "
      "every later flush and durable write on this disk fails until restart",
      path_, std::strerror(static_cast<int>(-result)));
}

void ImageDisk::kick() {
  resume_bounce_waiters();
  issue_staged_writes();
  if (engine_failure_.empty()) {
    try {
      engine_->kick();
    } catch (const std::exception& e) {
      fail_engine(std::string("kick: ") + e.what());
    }
  }
  run_orphaned();
}

void ImageDisk::issue_staged_writes() {
  if (!durable_batch_.has_staged()) return;
  // A lone durable write goes out with RWF_DSYNC; a batch, or a write joining
  // durable writes in flight, shares one fdatasync (see image_disk.h).
  std::vector<uint64_t> staged;
  staged.swap(staged_spare_);  // a local: issue() may fail the engine
  const bool batch = durable_batch_.take_staged(staged);
  for (const uint64_t id : staged) {
    PendingRequest* p = find(id);
    if (!p) continue;
    p->durability = batch ? Durability::BatchSync : Durability::Dsync;
    durable_batch_.issued(batch);
    issue(id, *p);
  }
  staged_spare_.swap(staged);  // its capacity goes back to staging next time
}

void ImageDisk::start_batch_sync_if_due(Finished& finished) {
  if (!durable_batch_.sync_wanted()) return;
  if (sticky_sync_error_.error() != 0) {
    // A sync after a failed one proves nothing: fail the writes it would cover.
    std::vector<uint64_t>& awaiting = durable_batch_.awaiting();
    for (const uint64_t id : awaiting) {
      if (PendingRequest* p = find(id)) {
        finished.emplace_back(std::move(p->request.done), sticky_sync_error_.error());
        release(id);
      }
    }
    awaiting.clear();
    return;
  }
  if (!durable_batch_.sync_due()) return;
  // Issued only now, after every covered write completed: the sync covers them.
  durable_batch_.start_sync();
  batch_sync_covers_ = window_.mark();
  IoOp op;
  op.kind = IoOp::Kind::Fdatasync;
  op.fd = image_.fd.get();
  op.tag = kBatchSyncTag;
  prepare(op);
}

void ImageDisk::finish_batch_sync(int64_t result, Finished& finished) {
  std::vector<uint64_t>& covered = durable_batch_.finish_sync();
  note_sync_failure(result);
  const int status = result < 0 ? static_cast<int>(result) : 0;
  if (status == 0) {
    ++stats_.fdatasyncs;
    window_.note_sync_done(batch_sync_covers_);
  }
  for (const uint64_t id : covered) {
    PendingRequest* p = find(id);
    if (!p) continue;
    if (status == 0) ++stats_.batched_durable_writes;
    // A failed sync leaves the writes' durability unknown: they fail too.
    finished.emplace_back(std::move(p->request.done), status);
    release(id);
  }
  covered.clear();
}

void ImageDisk::count_step(const PendingRequest& p, Step step, int64_t host_result) {
  if (host_result < 0) return;
  switch (step) {
    case Step::Transfer:
      if (p.request.op == RequestType::Read) {
        ++stats_.reads;
      } else {
        ++stats_.writes;
        if (p.durability == Durability::Dsync) ++stats_.dsync_writes;
      }
      break;
    case Step::Sync: ++stats_.fdatasyncs; break;
    case Step::ZeroRange:
    case Step::PunchHole:
    case Step::Allocate:
    case Step::Nothing: break;
  }
}

void ImageDisk::issue(uint64_t id, PendingRequest& p) {
  IoOp op;
  op.fd = image_.fd.get();
  op.tag = id;
  op.offset = p.request.offset;
  op.length = p.length;
  switch (p.steps.front()) {
    case Step::Transfer:
      op.kind = p.request.op == RequestType::Write ? IoOp::Kind::Write : IoOp::Kind::Read;
      op.iov = p.request.iov;
      if (p.bounce.data()) {  // the next chunk through the bounce buffer
        p.bounce_iov = {p.bounce.data(), transfer_length(p)};
        if (op.kind == IoOp::Kind::Write) {
          copy_from_iov(p.request.iov, p.bounce.data(), p.bounce_iov.iov_len, p.bounced);
        }
        op.offset += p.bounced;
        op.iov = std::span<const iovec>(&p.bounce_iov, 1);
      }
      op.dsync = op.kind == IoOp::Kind::Write && p.durability == Durability::Dsync;
      op.buffered = !traits(mode_).direct;
      break;
    case Step::ZeroRange:
      op.kind = IoOp::Kind::Fallocate;
      op.fallocate_mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
      break;
    case Step::PunchHole:
      op.kind = IoOp::Kind::Fallocate;
      op.fallocate_mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
      break;
    case Step::Allocate:
      op.kind = IoOp::Kind::Fallocate;
      op.fallocate_mode = FALLOC_FL_KEEP_SIZE;
      break;
    case Step::Sync:
      op.kind = IoOp::Kind::Fdatasync;
      p.sync_covers = window_.mark();  // every at-risk ack so far completed before it starts
      break;
    case Step::Nothing: op.kind = IoOp::Kind::Noop; break;
  }
  prepare(op);
}

bool ImageDisk::finish_bounce_chunk(uint64_t id, PendingRequest& p, int64_t& result) {
  if (p.bounce.data() && result >= 0 && static_cast<uint64_t>(result) == transfer_length(p)) {
    if (p.request.op == RequestType::Read) {
      copy_to_iov(p.request.iov, p.bounce.data(), static_cast<uint64_t>(result), p.bounced);
    }
    p.bounced += static_cast<uint64_t>(result);
    if (p.bounced < p.length) {  // more chunks: same step, next range
      issue(id, p);
      return false;
    }
    result = static_cast<int64_t>(p.length);  // the whole transfer, as unbounced
  }
  // The transfer is over (or failed): its buffer can serve a waiting request.
  give_back_bounce(p);
  return true;
}

void ImageDisk::advance(uint64_t id, int64_t result, Finished& finished) {
  PendingRequest* found = find(id);
  if (!found) return;
  PendingRequest& p = *found;
  const Step step = p.steps.front();
  if (step == Step::Transfer && !finish_bounce_chunk(id, p, result)) return;
  if (step == Step::Sync) {
    note_sync_failure(result);
    if (result >= 0) window_.note_sync_done(p.sync_covers);
  }
  count_step(p, step, result);
  if (step == Step::Transfer && p.durability != Durability::NotNeeded) {
    durable_batch_.host_completed(p.durability == Durability::BatchSync);
  }
  if (step == Step::PunchHole && result == 0) p.host_discarded = true;
  if (result == -EOPNOTSUPP && !p.fell_back) {
    // Filesystems without ZERO_RANGE: punch, then allocate again, so the
    // range reads as zeroes and stays allocated (what QEMU's file-posix does).
    // Without PUNCH_HOLE for an unmapping write-zeroes: write zeroes instead.
    const bool zeroing = p.request.op == RequestType::WriteZeroes;
    if (zeroing && step == Step::ZeroRange) {
      p.fell_back = true;
      p.steps.front() = Step::Allocate;
      p.steps.push_front(Step::PunchHole);
      issue(id, p);
      return;
    }
    if (zeroing && step == Step::PunchHole) {
      p.fell_back = true;
      p.steps.front() = Step::ZeroRange;
      issue(id, p);
      return;
    }
    // Discard is a hint (virtio 1.x 5.2.6): not supported means nothing to do.
    if (p.request.op == RequestType::Discard) result = 0;
  }
  int status = 0;
  if (result < 0) {
    status = static_cast<int>(result);
  } else if (step == Step::Transfer && static_cast<uint64_t>(result) != p.length) {
    status = -EIO;
  }
  p.steps.pop_front();
  // A durability sync after a failed one proves nothing (sticky error).
  if (status == 0 && !p.steps.empty() && p.steps.front() == Step::Sync &&
      sticky_sync_error_.error() != 0) {
    status = sticky_sync_error_.error();
  }
  if (status == 0 && !p.steps.empty()) {
    issue(id, p);
    return;
  }
  if (status == 0 && p.durability == Durability::BatchSync) {
    durable_batch_.await_sync(id);  // completes with the next batch fdatasync
    return;
  }
  if (status == 0 && p.request.op == RequestType::Discard && p.host_discarded) {
    ++stats_.discards;
  }
  if (status == 0 && p.request.op == RequestType::WriteZeroes) ++stats_.write_zeroes;
  if (status == 0 && p.at_risk_on_ack) window_.note_ack(p.length);
  if (p.request.op == RequestType::Flush) {
    const auto took = std::chrono::steady_clock::now() - p.flush_received;
    stats_.flush_latency_us.record(static_cast<uint64_t>(
        std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(took).count())));
  }
  finished.emplace_back(std::move(p.request.done), status);
  release(id);
}

size_t ImageDisk::process_round() {
  completions_.clear();
  if (engine_failure_.empty()) {
    try {
      engine_->reap(completions_);
    } catch (const std::exception& e) {
      fail_engine(std::string("reap: ") + e.what());
    }
  }
  // Swapped out, not borrowed: a callback may re-enter this disk.
  Finished finished;
  finished.swap(finished_spare_);
  finished.clear();
  for (const IoCompletion& c : completions_) {
    if (!engine_failure_.empty()) break;
    if (c.tag == kBatchSyncTag) {
      finish_batch_sync(c.result, finished);
    } else {
      advance(c.tag, c.result, finished);
    }
  }
  if (engine_failure_.empty()) start_batch_sync_if_due(finished);
  kick();  // follow-up steps prepared by advance(); resumes chunked work
  // Callbacks last: they may submit new requests to this disk.
  publish();  // before the callbacks: the guest never sees an ack the stats miss
  for (auto& [done, status] : finished) call_done(done, status);
  finished.clear();
  finished_spare_.swap(finished);
  return completions_.size();
}

void ImageDisk::process_completions() {
  // One round per call: the engine's eventfd stays readable while work
  // remains, so the event loop comes back after serving whatever else is
  // waiting, and one huge request cannot hold the loop thread.
  process_round();
}

void ImageDisk::drain() {
  int idle_rounds = 0;
  while (requests_.live() > 0) {
    kick();
    if (requests_.live() == 0) break;
    try {
      engine_->wait();
    } catch (const std::exception& e) {
      fail_engine(std::string("wait: ") + e.what());
    }
    idle_rounds = process_round() == 0 ? idle_rounds + 1 : 0;
    if (idle_rounds >= kMaxIdleDrainRounds && requests_.live() > 0) {
      fail_engine("drain: " + std::to_string(requests_.live()) +
                  " requests never completed in the engine");
    }
  }
  run_orphaned();
}

}  // namespace minivmm::storage
