// An IoEngine decorator that injects the failures a real host produces
// rarely: prepare() or kick() throwing (allocation failure, io_uring_submit
// error, write-log append failure) and fdatasync completions reporting an
// error. The faults live in a shared struct so a test can arm them after the
// Disk took ownership of the engine.
#pragma once

#include <cerrno>
#include <memory>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "storage/io_engine.h"

namespace minivmm::storage::test {

struct Faults {
  bool throw_on_prepare = false;
  bool throw_on_kick = false;  // thrown before the inner engine sees the kick
  int failing_fdatasyncs = 0;  // the next N fdatasync completions report -EIO
};

class FaultyEngine final : public IoEngine {
 public:
  FaultyEngine(std::unique_ptr<IoEngine> inner, std::shared_ptr<Faults> faults)
      : inner_(std::move(inner)), faults_(std::move(faults)) {}

  std::string_view name() const override { return inner_->name(); }
  void prepare(IoOp& op) override {
    if (faults_->throw_on_prepare) throw Error("injected: prepare failed");
    kinds_[op.tag] = op.kind;
    inner_->prepare(op);
  }
  void kick() override {
    if (faults_->throw_on_kick) throw Error("injected: io_uring_submit failed");
    inner_->kick();
  }
  int completion_fd() const override { return inner_->completion_fd(); }
  void reap(std::vector<IoCompletion>& out) override {
    const size_t first = out.size();
    inner_->reap(out);
    for (size_t i = first; i < out.size(); ++i) {
      if (kinds_[out[i].tag] == IoOp::Kind::Fdatasync && faults_->failing_fdatasyncs > 0) {
        --faults_->failing_fdatasyncs;
        out[i].result = -EIO;
      }
    }
  }
  void wait() override {
    if (faults_->throw_on_kick) return;  // nothing reached the inner engine
    inner_->wait();
  }

 private:
  std::unique_ptr<IoEngine> inner_;
  std::shared_ptr<Faults> faults_;
  std::unordered_map<uint64_t, IoOp::Kind> kinds_;  // by tag, latest op
};

}  // namespace minivmm::storage::test
