#include "storage/sync_engine.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "common/error.h"
#include "storage/iov_cursor.h"

namespace minivmm::storage {
namespace {

bool retryable(int err) { return err == EINTR || err == EAGAIN; }

// `iov` at `offset`: the op's own list, or one bounded step of it.
int64_t run_rw_inline(const IoOp& op, std::span<const iovec> iov, uint64_t offset) {
  const bool write = op.kind == IoOp::Kind::Write;
  const int flags = write && op.dsync ? RWF_DSYNC : 0;
  IovCursor cursor(iov, offset);
  while (!cursor.done()) {
    const int count = std::min(cursor.count(), IOV_MAX);
    const ssize_t n =
        write ? pwritev2(op.fd, cursor.data(), count, static_cast<off_t>(cursor.offset()), flags)
              : preadv2(op.fd, cursor.data(), count, static_cast<off_t>(cursor.offset()), 0);
    if (n < 0) {
      if (retryable(errno)) continue;
      return -errno;
    }
    // No progress inside a bounds-checked range: the file shrank under us.
    if (n == 0) return -EIO;
    cursor.advance(static_cast<uint64_t>(n));
  }
  return static_cast<int64_t>(cursor.transferred());
}

template <typename Call>
int64_t retry_call(Call call) {
  for (;;) {
    if (call() == 0) return 0;
    if (!retryable(errno)) return -errno;
  }
}

// Runs one operation to completion with plain system calls. Returns bytes,
// 0 or -errno.
int64_t run_io_op_inline(const IoOp& op) {
  switch (op.kind) {
    case IoOp::Kind::Read:
    case IoOp::Kind::Write: return run_rw_inline(op, op.iov, op.offset);
    case IoOp::Kind::Fdatasync: return retry_call([&] { return ::fdatasync(op.fd); });
    case IoOp::Kind::Fallocate:
      return retry_call([&] {
        return ::fallocate(op.fd, op.fallocate_mode, static_cast<off_t>(op.offset),
                           static_cast<off_t>(op.length));
      });
    case IoOp::Kind::Noop: return 0;
  }
  return -EINVAL;
}

}  // namespace

SyncEngine::SyncEngine() : event_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (!event_fd_) throw sys_error("eventfd for the sync I/O engine");
}

void SyncEngine::prepare(IoOp& op) {
  op.progress.reset(op.iov, op.offset);
  queued_.push_back(op);
}

void SyncEngine::signal() {
  const uint64_t one = 1;
  // A full counter (EAGAIN) is still readable, which is all we need.
  (void)!::write(event_fd_.get(), &one, sizeof(one));
}

bool SyncEngine::step_front(uint64_t& budget) {
  IoOp& op = queued_.front();
  IovCursor& cursor = op.progress;
  const bool rw = op.kind == IoOp::Kind::Read || op.kind == IoOp::Kind::Write;
  int64_t result = 0;
  if (!rw) {
    result = run_io_op_inline(op);
    budget = 0;  // a sync or fallocate is one unsplittable step
  } else {
    // At most `budget` bytes of the remaining iovecs, as one preadv2/pwritev2.
    scratch_.clear();
    uint64_t bytes = 0;
    for (int i = 0; i < std::min(cursor.count(), IOV_MAX) && bytes < budget; ++i) {
      iovec v = cursor.data()[i];
      v.iov_len = std::min<uint64_t>(v.iov_len, budget - bytes);
      scratch_.push_back(v);
      bytes += v.iov_len;
    }
    const int64_t n = run_rw_inline(op, scratch_, cursor.offset());
    if (n >= 0) {
      cursor.advance(static_cast<uint64_t>(n));
      budget -= std::min<uint64_t>(budget, static_cast<uint64_t>(n));
      if (!cursor.done()) return false;  // resumes at the next kick
      result = static_cast<int64_t>(cursor.transferred());
    } else {
      result = n;
    }
  }
  ready_.push_back({op.tag, result});
  queued_.pop_front();
  return true;
}

bool SyncEngine::run_budget() {
  if (queued_.empty()) return false;
  uint64_t budget = kSyncBytesPerKick;
  while (!queued_.empty() && budget > 0) step_front(budget);
  return true;
}

void SyncEngine::kick() {
  // Signalled whenever work was done, finished or not: the loop comes back
  // (process_completions kicks again), serving other events in between.
  if (run_budget()) signal();
}

void SyncEngine::wait() {
  bool worked = false;
  while (ready_.empty() && !queued_.empty()) worked |= run_budget();
  if (worked) signal();
}

void SyncEngine::reap(std::vector<IoCompletion>& out) {
  uint64_t count;
  (void)!::read(event_fd_.get(), &count, sizeof(count));
  out.insert(out.end(), ready_.begin(), ready_.end());
  ready_.clear();
}

}  // namespace minivmm::storage

namespace minivmm::storage {

std::unique_ptr<IoEngine> make_sync_engine() { return std::make_unique<SyncEngine>(); }

}  // namespace minivmm::storage
