#include "tests/storage/tracing_engine.h"

#include <algorithm>

#include "storage/iov_cursor.h"

namespace minivmm::storage {

void IoTrace::append(TracedEvent event) {
  event.seq = events_.size();
  events_.push_back(std::move(event));
}

size_t IoTrace::issued(IoOp::Kind kind, std::optional<bool> dsync) const {
  return static_cast<size_t>(std::count_if(events_.begin(), events_.end(), [&](const auto& e) {
    return e.type == TracedEvent::Type::Issued && e.kind == kind && (!dsync || e.dsync == *dsync);
  }));
}

size_t IoTrace::completed() const {
  return static_cast<size_t>(std::count_if(events_.begin(), events_.end(), [](const auto& e) {
    return e.type == TracedEvent::Type::Completed;
  }));
}

TracingEngine::TracingEngine(std::unique_ptr<IoEngine> inner, std::shared_ptr<IoTrace> trace)
    : inner_(std::move(inner)), trace_(std::move(trace)) {}

void TracingEngine::prepare(IoOp& op) {
  TracedEvent e;
  e.type = TracedEvent::Type::Issued;
  e.tag = op.tag;
  e.kind = op.kind;
  e.offset = op.offset;
  e.length = op.kind == IoOp::Kind::Fallocate ? op.length : iov_total(op.iov);
  e.dsync = op.dsync;
  e.fallocate_mode = op.fallocate_mode;
  if (op.kind == IoOp::Kind::Write && trace_->keep_write_data()) {
    e.data.resize(e.length);
    copy_from_iov(op.iov, e.data.data(), e.data.size());
  }
  trace_->append(std::move(e));
  inner_->prepare(op);
}

void TracingEngine::reap(std::vector<IoCompletion>& out) {
  const size_t first = out.size();
  inner_->reap(out);
  for (size_t i = first; i < out.size(); ++i) {
    TracedEvent e;
    e.type = TracedEvent::Type::Completed;
    e.tag = out[i].tag;
    e.result = out[i].result;
    trace_->append(std::move(e));
  }
}

}  // namespace minivmm::storage
