// The io_uring engine: prepare() queues, kick() fills SQEs and submits them
// with one io_uring_enter; the kernel signals an eventfd registered with
// io_uring_register_eventfd for every CQE. At most `queue_depth` operations
// are in the ring; the rest wait in order and go in as slots free up.
#pragma once

#include <liburing.h>

#include <deque>
#include <memory>
#include <vector>

#include "common/unique_fd.h"
#include "storage/io_engine.h"
#include "storage/iov_cursor.h"

namespace minivmm::storage {

class UringEngine final : public IoEngine {
 public:
  // Throws minivmm::Error when the ring cannot be set up or lacks an opcode.
  explicit UringEngine(unsigned queue_depth);
  ~UringEngine() override;
  UringEngine(const UringEngine&) = delete;
  UringEngine& operator=(const UringEngine&) = delete;

  std::string_view name() const override { return "io_uring"; }
  void prepare(const IoOp& op) override;
  void kick() override;
  int event_fd() const override { return event_fd_.get(); }
  void reap(std::vector<IoCompletion>& out) override;
  void wait() override;

 private:
  struct InFlightOp {
    IoOp op;
    IovCursor cursor;  // Read/Write progress, for resubmitting short transfers
  };
  void fill_sqe(io_uring_sqe* sqe, uint64_t id, const InFlightOp& p);
  void handle_cqe(uint64_t id, int res, std::vector<IoCompletion>& out);
  void signal_event_fd();
  // Operation records are reused (id = slot + 1): no allocation or hash
  // node per operation once the pool has grown.
  InFlightOp* find(uint64_t id);
  void release(uint64_t id);

  io_uring ring_{};
  UniqueFd event_fd_;
  unsigned queue_depth_;
  unsigned in_ring_ = 0;
  std::vector<std::unique_ptr<InFlightOp>> slots_;  // by id - 1
  std::vector<bool> slot_live_;
  std::vector<uint32_t> free_slots_;
  std::deque<uint64_t> to_submit_;       // prepared, or to resubmit
  std::vector<IoCompletion> immediate_;  // Noops: complete without the kernel
};

}  // namespace minivmm::storage
