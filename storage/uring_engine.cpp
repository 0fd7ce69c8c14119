#include "storage/uring_engine.h"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <iterator>
#include <string>

#include "common/error.h"

namespace minivmm::storage {
namespace {

void require_opcodes(io_uring* ring) {
  io_uring_probe* probe = io_uring_get_probe_ring(ring);
  if (!probe) throw Error("io_uring: opcode probe failed (kernel older than 5.6)");
  struct Need {
    int op;
    const char* name;
  };
  const Need needs[] = {{IORING_OP_READV, "READV"},
                        {IORING_OP_WRITEV, "WRITEV"},
                        {IORING_OP_FSYNC, "FSYNC"},
                        {IORING_OP_FALLOCATE, "FALLOCATE"}};
  std::string missing;
  for (const Need& n : needs) {
    if (!io_uring_opcode_supported(probe, n.op)) missing += std::string(" ") + n.name;
  }
  io_uring_free_probe(probe);
  if (!missing.empty()) throw Error("io_uring: kernel lacks opcodes:" + missing);
}

// The SQE opcodes fill_sqe() and the wake NOP use, and nothing else.
constexpr uint8_t kAllowedOpcodes[] = {IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC,
                                       IORING_OP_FALLOCATE, IORING_OP_NOP};

// io_uring operations run in the kernel without passing seccomp, so an
// unrestricted ring would let the I/O loop open files or connect sockets
// (IORING_OP_OPENAT, IORING_OP_CONNECT) that the sandbox forbids as system
// calls. io_uring_register(2) IORING_REGISTER_RESTRICTIONS (Linux 5.10):
// any other opcode, and any SQE flag (this engine sets none), completes
// with -EACCES; with no IORING_RESTRICTION_REGISTER_OP allowed, every
// later io_uring_register call fails with -EACCES too (no files or buffers
// can be registered). Restrictions apply only to a ring created disabled,
// and only once it is enabled.
void restrict_and_enable(io_uring* ring) {
  io_uring_restriction allowed[std::size(kAllowedOpcodes) + 1] = {};
  unsigned n = 0;
  for (const uint8_t op : kAllowedOpcodes) {
    allowed[n].opcode = IORING_RESTRICTION_SQE_OP;
    allowed[n++].sqe_op = op;
  }
  allowed[n].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
  allowed[n++].sqe_flags = 0;
  // The generic io_uring_register(): liburing 2.3's shared library does not
  // export io_uring_register_restrictions / io_uring_enable_rings (they are
  // missing from its symbol map), though its header declares them.
  const auto fd = static_cast<unsigned>(ring->ring_fd);
  int ret = io_uring_register(fd, IORING_REGISTER_RESTRICTIONS, allowed, n);
  if (ret < 0) throw sys_error("io_uring: IORING_REGISTER_RESTRICTIONS", -ret);
  ret = io_uring_register(fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
  if (ret < 0) throw sys_error("io_uring: IORING_REGISTER_ENABLE_RINGS", -ret);
}

}  // namespace

UringEngine::UringEngine(unsigned queue_depth) : queue_depth_(queue_depth) {
  // Disabled until restricted (restrict_and_enable). A kernel that cannot
  // restrict rings gets no ring at all: make_io_engine falls back to the
  // synchronous engine rather than run an unrestricted one.
  const int ret = io_uring_queue_init(queue_depth, &ring_, IORING_SETUP_R_DISABLED);
  if (ret == -EINVAL) {
    throw Error(
        "io_uring: the kernel cannot create a restricted ring (IORING_SETUP_R_DISABLED, "
        "Linux 5.10); an unrestricted one would bypass the seccomp sandbox");
  }
  if (ret < 0) throw sys_error("io_uring_queue_init(" + std::to_string(queue_depth) + ")", -ret);
  try {
    require_opcodes(&ring_);  // IORING_REGISTER_PROBE: before the restrictions refuse it
    restrict_and_enable(&ring_);
  } catch (...) {
    io_uring_queue_exit(&ring_);
    throw;
  }
}

UringEngine::~UringEngine() {
  // The ring may still own buffers in flight; wait so the kernel never
  // touches memory after its owners are gone.
  // Submitting too: an SQE a failed io_uring_submit left in the ring would
  // otherwise never complete and this would wait forever.
  while (in_ring_ > 0) {
    io_uring_cqe* cqe = nullptr;
    const int ret = io_uring_submit_and_wait(&ring_, 1);
    if (ret == -EINTR) continue;
    if (ret < 0 || io_uring_peek_cqe(&ring_, &cqe) != 0 || !cqe) break;
    io_uring_cqe_seen(&ring_, cqe);
    --in_ring_;
  }
  io_uring_queue_exit(&ring_);
}

void UringEngine::prepare(IoOp& op) {
  if (op.kind == IoOp::Kind::Noop) {
    immediate_.push_back({op.tag, 0});
    return;
  }
  op.progress.reset(op.iov, op.offset);
  to_submit_.push_back(op);
}

bool UringEngine::try_inline(IoOp& op) {
  IovCursor& cursor = op.progress;
  const bool write = op.kind == IoOp::Kind::Write;
  if (!op.buffered || op.dsync || (!write && op.kind != IoOp::Kind::Read)) return false;
  if (write && inline_write_backoff_ > 0) {
    --inline_write_backoff_;
    return false;
  }
  // Small transfers only: a large one would hold the loop thread for its
  // copy (the bound the sync engine keeps per kick, kSyncBytesPerKick).
  if (cursor.count() > kInlineMaxSegments || cursor.remaining() > kInlineMaxBytes) return false;
  const int count = cursor.count();
  const int flags = write && !nowait_writes_ ? 0 : RWF_NOWAIT;
  // Only a write that may block is timed (a clock read is ~50 ns).
  const auto start =
      flags == 0 ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  const ssize_t n =
      write ? ::pwritev2(op.fd, cursor.data(), count, static_cast<off_t>(cursor.offset()), flags)
            : ::preadv2(op.fd, cursor.data(), count, static_cast<off_t>(cursor.offset()), flags);
  if (n < 0) {
    // Would block, or no non-blocking buffered writes here: the ring does it
    // (and reports any real error).
    if (errno == EOPNOTSUPP && write && flags != 0) nowait_writes_ = false;
    return false;
  }
  if (flags == 0 && std::chrono::steady_clock::now() - start > kSlowInlineWrite) {
    inline_write_backoff_ = kInlineWriteBackoff;
  }
  if (n == 0) return false;  // end of file: the ring's path reports it
  cursor.advance(static_cast<uint64_t>(n));
  if (!cursor.done()) return false;  // the rest through the ring
  immediate_.push_back({op.tag, static_cast<int64_t>(cursor.transferred())});
  return true;
}

void UringEngine::fill_sqe(io_uring_sqe* sqe, IoOp& op) {
  const IovCursor& cursor = op.progress;
  switch (op.kind) {
    case IoOp::Kind::Read:
      io_uring_prep_readv2(sqe, op.fd, cursor.data(),
                           static_cast<unsigned>(std::min(cursor.count(), IOV_MAX)),
                           cursor.offset(), 0);
      break;
    case IoOp::Kind::Write:
      io_uring_prep_writev2(sqe, op.fd, cursor.data(),
                            static_cast<unsigned>(std::min(cursor.count(), IOV_MAX)),
                            cursor.offset(), op.dsync ? RWF_DSYNC : 0);
      break;
    case IoOp::Kind::Fdatasync: io_uring_prep_fsync(sqe, op.fd, IORING_FSYNC_DATASYNC); break;
    case IoOp::Kind::Fallocate:
      io_uring_prep_fallocate(sqe, op.fd, op.fallocate_mode, static_cast<off_t>(op.offset),
                              static_cast<off_t>(op.length));
      break;
    case IoOp::Kind::Noop: io_uring_prep_nop(sqe); break;
  }
  io_uring_sqe_set_data(sqe, &op);
}

void UringEngine::kick() {
  while (!to_submit_.empty() && in_ring_ < queue_depth_) {
    IoOp& op = to_submit_.front();
    if (try_inline(op)) {
      to_submit_.pop_front();
      continue;
    }
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) break;
    to_submit_.pop_front();
    fill_sqe(sqe, op);
    ++in_ring_;
    if (io_uring_sq_ready(&ring_) >= kMaxSubmitBatch) submit_now();
  }
  // Noops and inline transfers complete through reap(), like the rest: a
  // NOP's CQE makes the ring fd readable for them (it completes inside the
  // io_uring_enter below). Where the ring is full, the operations in it
  // will make it readable anyway.
  if (!immediate_.empty() && !wake_nop_in_ring_) {
    if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) {
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, kWakeNop);
      wake_nop_in_ring_ = true;
      ++in_ring_;
    }
  }
  if (io_uring_sq_ready(&ring_) > 0) submit_now();
}

void UringEngine::submit_now() {
  // On -EINTR/-EAGAIN/-EBUSY the SQEs stay in the ring and go in with the
  // next submit (next kick/reap).
  int ret;
  do {
    ++submit_calls_;
    ret = io_uring_submit(&ring_);
  } while (ret == -EINTR);
  if (ret < 0 && ret != -EAGAIN && ret != -EBUSY) throw sys_error("io_uring_submit", -ret);
}

void UringEngine::handle_cqe(IoOp& op, int res, std::vector<IoCompletion>& out) {
  if (res == -EAGAIN || res == -EINTR) {
    to_submit_.push_back(op);
    return;
  }
  int64_t result = res;
  const bool rw = op.kind == IoOp::Kind::Read || op.kind == IoOp::Kind::Write;
  if (rw && res >= 0) {
    // No progress inside a bounds-checked range: the file shrank under us.
    if (res == 0) {
      result = -EIO;
    } else {
      op.progress.advance(static_cast<uint64_t>(res));
      if (!op.progress.done()) {  // short transfer: resubmit the rest
        to_submit_.push_back(op);
        return;
      }
      result = static_cast<int64_t>(op.progress.transferred());
    }
  }
  out.push_back({op.tag, result});
}

void UringEngine::reap(std::vector<IoCompletion>& out) {
  out.insert(out.end(), immediate_.begin(), immediate_.end());
  immediate_.clear();
  io_uring_cqe* cqe = nullptr;
  while (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe) {
    const bool wake_nop = io_uring_cqe_get_data64(cqe) == kWakeNop;
    auto* op = static_cast<IoOp*>(io_uring_cqe_get_data(cqe));
    const int res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    --in_ring_;
    if (wake_nop) {
      wake_nop_in_ring_ = false;
      continue;
    }
    handle_cqe(*op, res, out);
  }
  if (!to_submit_.empty()) kick();
}

void UringEngine::wait() {
  if (!immediate_.empty()) return;
  if (in_ring_ == 0 && !to_submit_.empty()) kick();
  if (!immediate_.empty() || in_ring_ == 0) return;
  // submit_and_wait, not wait_cqe: SQEs a failed submit left in the ring go
  // in now (or the error is thrown), so waiting on them cannot hang.
  io_uring_cqe* cqe = nullptr;
  if (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe) return;
  int ret;
  do {
    ret = io_uring_submit_and_wait(&ring_, 1);
  } while (ret == -EINTR || ret == -EAGAIN);
  if (ret < 0) throw sys_error("io_uring_submit_and_wait", -ret);
}

std::unique_ptr<IoEngine> make_uring_engine(unsigned queue_depth) {
  return std::make_unique<UringEngine>(queue_depth);
}

}  // namespace minivmm::storage
