// ImageDisk's durability bookkeeping (docs/cache-modes.md): whether writes
// must be durable, the route of each staged durable write and the batch
// fdatasync they share, and the sticky error a failed sync leaves.
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "storage/image_disk.h"

namespace minivmm::storage {

bool ImageDisk::writes_must_be_durable() const {
  return !write_cache_ && traits(mode_).flush_honoured;
}

void ImageDisk::set_write_cache(bool enabled) {
  // writethrough <-> writeback and directsync <-> none: only per-write
  // durability changes; O_DIRECT stays as opened (contract, QEMU rules).
  write_cache_ = enabled;
}

void ImageDisk::stage_or_issue(uint64_t id, PendingRequest& p) {
  if (p.durability == Durability::Staged) {
    durable_batch_.stage(id);  // the route depends on the batch: kick()
    return;
  }
  issue(id, p);
}

bool ImageDisk::refused_by_sticky_error(const DiskRequest& request) const {
  if (sticky_sync_error_.error() == 0) return false;
  if (request.op == RequestType::Flush) {
    return (traits(mode_).flush_honoured || request.host_sync) && !read_only_;
  }
  return request.op != RequestType::Read && writes_must_be_durable();
}

void ImageDisk::note_sync_failure(int64_t result) {
  if (!sticky_sync_error_.note(result)) return;
  spdlog::error(
      "storage: {}: fdatasync failed ({}); the host may have dropped written data, so "
      "every later flush and durable write on this disk fails until restart",
      path_, std::strerror(static_cast<int>(-result)));
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
  batch_sync_op_.kind = IoOp::Kind::Fdatasync;
  batch_sync_op_.fd = image_.fd.get();
  batch_sync_op_.tag = kBatchSyncTag;
  prepare(batch_sync_op_);
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

}  // namespace minivmm::storage
