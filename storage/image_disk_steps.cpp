// ImageDisk's step machine: which host operations a request needs (plan),
// the IoOp each step becomes (issue), and what a step's completion leads to
// (advance: the next step, a fallocate fallback, or the request's end).
#include <fcntl.h>
#include <linux/falloc.h>

#include <algorithm>
#include <cerrno>

#include "storage/image_disk.h"
#include "storage/iov_cursor.h"

namespace minivmm::storage {

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
  // The request's own op: the engine's last use of it ended with the
  // completion that led here. Every field is set again.
  IoOp& op = p.op;
  op.fd = image_.fd.get();
  op.tag = id;
  op.offset = p.request.offset;
  op.iov = {};
  op.length = p.length;
  op.fallocate_mode = 0;
  op.dsync = false;
  op.buffered = false;
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

}  // namespace minivmm::storage
