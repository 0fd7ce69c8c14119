// An IoEngine that holds operations without completing them: none at all
// (a request the engine lost), or one after every `waits_per_completion`
// wait() calls (an engine that needs many quiet rounds, like one
// resubmitting short transfers). Completed reads and writes report their
// full length, without touching any file.
#pragma once

#include <sys/eventfd.h>

#include <cerrno>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "common/unique_fd.h"
#include "storage/io_engine.h"
#include "storage/iov_cursor.h"

namespace minivmm::storage::test {

struct StallState {
  // 0: never complete on its own.
  uint64_t waits_per_completion = 0;
  // Completes everything held with -ETIMEDOUT once wait() was called this
  // often: a drain that ignores a stuck engine fails the test instead of
  // hanging it.
  uint64_t give_up_after_waits = 100000;
  uint64_t wait_calls = 0;
};

class StallingEngine final : public IoEngine {
 public:
  explicit StallingEngine(std::shared_ptr<StallState> state)
      : state_(std::move(state)), event_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  std::string_view name() const override { return "stalling"; }
  void prepare(IoOp& op) override {
    const bool rw = op.kind == IoOp::Kind::Read || op.kind == IoOp::Kind::Write;
    held_.push_back({op.tag, rw ? static_cast<int64_t>(iov_total(op.iov)) : 0});
  }
  void kick() override {}
  int completion_fd() const override { return event_fd_.get(); }
  void reap(std::vector<IoCompletion>& out) override {
    out.insert(out.end(), ready_.begin(), ready_.end());
    ready_.clear();
  }
  void wait() override {
    ++state_->wait_calls;
    ++waits_since_completion_;
    if (state_->wait_calls >= state_->give_up_after_waits) {
      for (IoCompletion& c : held_) ready_.push_back({c.tag, -ETIMEDOUT});
      held_.clear();
      return;
    }
    if (state_->waits_per_completion == 0 || held_.empty() ||
        waits_since_completion_ < state_->waits_per_completion) {
      return;
    }
    waits_since_completion_ = 0;
    ready_.push_back(held_.front());
    held_.pop_front();
  }

 private:
  std::shared_ptr<StallState> state_;
  UniqueFd event_fd_;
  std::deque<IoCompletion> held_;  // result: what completing it reports
  std::vector<IoCompletion> ready_;
  uint64_t waits_since_completion_ = 0;
};

}  // namespace minivmm::storage::test
