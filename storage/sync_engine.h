// The synchronous fallback engine: kick() runs each queued operation inline
// (preadv2/pwritev2/fdatasync/fallocate) and then signals the eventfd, so the
// disk still sees its completions only from process_completions().
#pragma once

#include <vector>

#include "common/unique_fd.h"
#include "storage/io_engine.h"

namespace minivmm::storage {

class SyncEngine final : public IoEngine {
 public:
  SyncEngine();
  std::string_view name() const override { return "sync"; }
  void prepare(const IoOp& op) override;
  void kick() override;
  int event_fd() const override { return event_fd_.get(); }
  void reap(std::vector<IoCompletion>& out) override;
  void wait() override {}  // everything kicked has already completed

 private:
  struct QueuedOp {
    IoOp op;
    std::vector<iovec> iov;  // owned copy; op.iov points into it
  };
  std::vector<QueuedOp> queued_;
  std::vector<IoCompletion> ready_;
  UniqueFd event_fd_;
};

// Runs one operation to completion with plain system calls (shared with the
// io_uring engine's nothing-to-submit paths). Returns bytes, 0 or -errno.
int64_t run_io_op_inline(const IoOp& op);

}  // namespace minivmm::storage
