#include "injected_bugs.h"

#include <unistd.h>

#include <deque>
#include <string>
#include <vector>

#include "common/error.h"

namespace minivmm::storage::crash {
namespace {

// Tags of the real fdatasyncs, whose completions the disk must never see.
constexpr uint64_t kHiddenTag = uint64_t{1} << 63;

class EarlyFlushEngine final : public IoEngine {
 public:
  explicit EarlyFlushEngine(std::unique_ptr<IoEngine> inner) : inner_(std::move(inner)) {}
  ~EarlyFlushEngine() override {
    // The host's fdatasyncs still run before the engine goes away.
    for (IoOp* op : held_) released_.push_back(op);
    held_.clear();
    forward_released();
    inner_->kick();
    std::vector<IoCompletion> out;
    while (hidden_in_flight_ > 0) {
      inner_->wait();
      out.clear();
      inner_->reap(out);
      for (const IoCompletion& c : out) {
        if (c.tag & kHiddenTag) --hidden_in_flight_;
      }
    }
  }
  std::string_view name() const override { return inner_->name(); }

  void prepare(IoOp& op) override {
    if (op.kind != IoOp::Kind::Fdatasync) {
      inner_->prepare(op);
      return;
    }
    fake_.push_back({op.tag, 0});  // BUG: success before any fdatasync ran
    // A copy of its own (the engine holds it until reaped; the disk may
    // reuse its op and tag at once).
    IoOp& real = hidden_.emplace_back();
    real.kind = op.kind;
    real.fd = op.fd;
    real.tag = kHiddenTag | next_hidden_++;
    held_.push_back(&real);
  }

  void kick() override {
    forward_released();
    inner_->kick();
    if (!fake_.empty()) signal();
  }
  int completion_fd() const override { return inner_->completion_fd(); }

  void reap(std::vector<IoCompletion>& out) override {
    // The fake completions go first; their fdatasyncs are released to the
    // host only now, at the next kick.
    out.insert(out.end(), fake_.begin(), fake_.end());
    fake_.clear();
    for (IoOp* op : held_) released_.push_back(op);
    held_.clear();
    std::vector<IoCompletion> real;
    inner_->reap(real);
    for (const IoCompletion& c : real) {
      if (c.tag & kHiddenTag) {
        --hidden_in_flight_;
      } else {
        out.push_back(c);
      }
    }
  }

  void wait() override {
    if (!fake_.empty()) return;
    inner_->wait();
  }

 private:
  void forward_released() {
    for (IoOp* op : released_) {
      inner_->prepare(*op);
      ++hidden_in_flight_;
    }
    released_.clear();
  }
  void signal() {
    const uint64_t one = 1;
    (void)!::write(inner_->completion_fd(), &one, sizeof one);
  }

  std::unique_ptr<IoEngine> inner_;
  std::vector<IoCompletion> fake_;
  std::deque<IoOp> hidden_;  // the real fdatasyncs (stable addresses)
  std::vector<IoOp*> held_;
  std::vector<IoOp*> released_;
  size_t hidden_in_flight_ = 0;
  uint64_t next_hidden_ = 0;
};

class DropDsyncEngine final : public IoEngine {
 public:
  explicit DropDsyncEngine(std::unique_ptr<IoEngine> inner) : inner_(std::move(inner)) {}
  std::string_view name() const override { return inner_->name(); }
  void prepare(IoOp& op) override {
    op.dsync = false;  // BUG: the write is no longer durable at completion
    inner_->prepare(op);
  }
  void kick() override { inner_->kick(); }
  int completion_fd() const override { return inner_->completion_fd(); }
  void reap(std::vector<IoCompletion>& out) override { inner_->reap(out); }
  void wait() override { inner_->wait(); }

 private:
  std::unique_ptr<IoEngine> inner_;
};

}  // namespace

InjectedBug parse_injected_bug(std::string_view name) {
  if (name == "none") return InjectedBug::None;
  if (name == "early-flush") return InjectedBug::EarlyFlush;
  if (name == "drop-dsync") return InjectedBug::DropDsync;
  throw Error("unknown injected bug '" + std::string(name) +
              "' (allowed: none, early-flush, drop-dsync)");
}

std::unique_ptr<IoEngine> inject_bug(InjectedBug bug, std::unique_ptr<IoEngine> inner) {
  switch (bug) {
    case InjectedBug::None: return inner;
    case InjectedBug::EarlyFlush: return std::make_unique<EarlyFlushEngine>(std::move(inner));
    case InjectedBug::DropDsync: return std::make_unique<DropDsyncEngine>(std::move(inner));
  }
  return inner;
}

}  // namespace minivmm::storage::crash
