// The io_uring engine: prepare() queues, kick() fills SQEs and submits them,
// kMaxSubmitBatch per io_uring_enter. The completion fd is the ring's own fd, readable
// (level-triggered) while the CQ holds entries: reap() needs no system call
// to clear a counter, as a registered eventfd would. At most `queue_depth` operations
// are in the ring; the rest wait in order and go in as slots free up.
//
// Page-cache fast path: kick() first tries a buffered read or write (no
// O_DIRECT, no RWF_DSYNC) inline with preadv2/pwritev2. io_uring serves a
// buffered read from the page cache inline too, but hands every buffered
// write on a filesystem without non-blocking buffered writes (ext4) to a
// worker thread, so a plain pwritev2 costs far less CPU. Reads go with
// RWF_NOWAIT (a cache miss goes to the ring); writes with RWF_NOWAIT where
// the filesystem supports it, else plain and timed: one that blocks longer
// than kSlowInlineWrite (dirty throttling, journal) sends the next
// kInlineWriteBackoff writes through the ring, so the loop thread is never
// held for long. Transfers over kInlineMaxBytes or kInlineMaxSegments always
// go through the ring. Inline completions are reported through reap() like
// all others.
//
// The ring is restricted (IORING_REGISTER_RESTRICTIONS) to the opcodes the
// engine issues: READV, WRITEV, FSYNC, FALLOCATE and NOP, no SQE flags and
// no later io_uring_register, so it cannot do what the seccomp sandbox
// forbids the I/O loop (open files, connect sockets). A kernel without
// restrictions (before 5.10) gets no io_uring engine.
#pragma once

#include <liburing.h>

#include <chrono>
#include <memory>
#include <vector>

#include "storage/io_engine.h"
#include "storage/op_queue.h"

namespace minivmm::storage {

class UringEngine final : public IoEngine {
 public:
  // Throws minivmm::Error when the ring cannot be set up or lacks an opcode.
  explicit UringEngine(unsigned queue_depth);
  ~UringEngine() override;
  UringEngine(const UringEngine&) = delete;
  UringEngine& operator=(const UringEngine&) = delete;

  static constexpr std::chrono::microseconds kSlowInlineWrite{500};
  static constexpr unsigned kInlineWriteBackoff = 1024;
  static constexpr int kInlineMaxSegments = 16;
  static constexpr uint64_t kInlineMaxBytes = 256 << 10;
  // SQEs per io_uring_enter. io_uring plugs the block layer for a submission
  // of three or more (io_submit_state_start), so a batch reaches the disk
  // only when the whole system call is done; on a virtual disk whose host
  // serves requests as they come, whole batches left QD32 O_DIRECT rows
  // behind qemu-img (one SQE per enter), 1 or 2 per enter level with it
  // (bench/README.md, "Why the code is as it is"). 2: half the system calls of 1.
  static constexpr unsigned kMaxSubmitBatch = 2;

  std::string_view name() const override { return "io_uring"; }
  void prepare(IoOp& op) override;
  void kick() override;
  int completion_fd() const override { return ring_.ring_fd; }
  bool completions_ready() const override {
    return !immediate_.empty() || io_uring_cq_ready(&ring_) > 0;
  }
  void reap(std::vector<IoCompletion>& out) override;
  void wait() override;
  // io_uring_enter calls made to submit (tests check kMaxSubmitBatch).
  uint64_t submit_calls() const { return submit_calls_; }
  // Tests only: the ring itself, to prove what it refuses. Use it only
  // while the engine has nothing in flight.
  io_uring& ring_for_tests() { return ring_; }

 private:
  // The SQE's user data is the caller's IoOp itself.
  static void fill_sqe(io_uring_sqe* sqe, IoOp& op);
  // True when the operation finished inline (its completion is queued).
  bool try_inline(IoOp& op);
  void submit_now();
  void handle_cqe(IoOp& op, int res, std::vector<IoCompletion>& out);

  io_uring ring_{};
  unsigned queue_depth_;
  unsigned in_ring_ = 0;
  OpQueue to_submit_;                    // prepared, or to resubmit, in order
  std::vector<IoCompletion> immediate_;  // Noops and inline transfers
  // A NOP whose CQE wakes the loop for immediate_ (user data kWakeNop, which
  // no IoOp's address can be).
  static constexpr uint64_t kWakeNop = ~uint64_t{0};
  bool wake_nop_in_ring_ = false;
  bool nowait_writes_ = true;          // the filesystem takes RWF_NOWAIT buffered writes
  unsigned inline_write_backoff_ = 0;  // writes left to send through the ring
  uint64_t submit_calls_ = 0;
};

}  // namespace minivmm::storage
