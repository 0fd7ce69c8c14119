// The synchronous fallback engine: kick() runs queued operations inline
// (preadv2/pwritev2/fdatasync/fallocate) and then signals the eventfd, so the
// disk still sees its completions only from process_completions(). Each
// kick() moves at most kSyncBytesPerKick bytes (a longer transfer resumes at
// the next kick), so one huge request cannot hold the event-loop thread and
// the vCPU threads' run_sync calls behind it.
#pragma once

#include <vector>

#include "common/unique_fd.h"
#include "storage/io_engine.h"
#include "storage/op_queue.h"

namespace minivmm::storage {

class SyncEngine final : public IoEngine {
 public:
  SyncEngine();
  std::string_view name() const override { return "sync"; }
  void prepare(IoOp& op) override;
  void kick() override;
  int completion_fd() const override { return event_fd_.get(); }
  void reap(std::vector<IoCompletion>& out) override;
  // Runs queued work until at least one operation has completed.
  void wait() override;

 private:
  // Runs up to one kick's budget; true when any work was done.
  bool run_budget();
  // One step of the front operation, at most `budget` bytes; true when it
  // finished (its completion is in ready_).
  bool step_front(uint64_t& budget);
  void signal();

  OpQueue queued_;  // Read/Write progress across kicks: each op's own
  std::vector<IoCompletion> ready_;
  std::vector<iovec> scratch_;  // the iovecs of one bounded step
  UniqueFd event_fd_;
};

}  // namespace minivmm::storage
