// ImageDisk's O_DIRECT bounce step: a misaligned transfer takes one buffer
// from the disk's bounded pool (or waits, FIFO, for one), goes through it
// chunk by chunk, and gives it back when the transfer ends.
#include <algorithm>
#include <cerrno>

#include <spdlog/spdlog.h>

#include "storage/image_disk.h"
#include "storage/iov_cursor.h"

namespace minivmm::storage {

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

}  // namespace minivmm::storage
