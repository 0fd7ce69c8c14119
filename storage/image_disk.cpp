#include "storage/image_disk.h"

#include <algorithm>
#include <cerrno>
#include <string>

#include <spdlog/spdlog.h>

#include "storage/request_checks.h"

namespace minivmm::storage {

namespace {

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

bool ImageDisk::prepare(IoOp& op) {
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
