#include "tests/storage/recording_engine.h"

#include <algorithm>

#include "storage/iov_cursor.h"

namespace minivmm::storage {

void IoRecord::append(RecordedEvent event) {
  event.seq = events_.size();
  events_.push_back(std::move(event));
}

size_t IoRecord::issued(IoOp::Kind kind, std::optional<bool> dsync) const {
  return static_cast<size_t>(std::count_if(events_.begin(), events_.end(), [&](const auto& e) {
    return e.type == RecordedEvent::Type::Issued && e.kind == kind && (!dsync || e.dsync == *dsync);
  }));
}

size_t IoRecord::completed() const {
  return static_cast<size_t>(std::count_if(events_.begin(), events_.end(), [](const auto& e) {
    return e.type == RecordedEvent::Type::Completed;
  }));
}

RecordingEngine::RecordingEngine(std::unique_ptr<IoEngine> inner, std::shared_ptr<IoRecord> record)
    : inner_(std::move(inner)), record_(std::move(record)) {}

void RecordingEngine::prepare(const IoOp& op) {
  RecordedEvent e;
  e.type = RecordedEvent::Type::Issued;
  e.tag = op.tag;
  e.kind = op.kind;
  e.offset = op.offset;
  e.length = op.kind == IoOp::Kind::Fallocate ? op.length : iov_total(op.iov);
  e.dsync = op.dsync;
  e.fallocate_mode = op.fallocate_mode;
  if (op.kind == IoOp::Kind::Write && record_->keep_write_data()) {
    e.data.resize(e.length);
    copy_from_iov(op.iov, e.data.data(), e.data.size());
  }
  record_->append(std::move(e));
  inner_->prepare(op);
}

void RecordingEngine::reap(std::vector<IoCompletion>& out) {
  const size_t first = out.size();
  inner_->reap(out);
  for (size_t i = first; i < out.size(); ++i) {
    RecordedEvent e;
    e.type = RecordedEvent::Type::Completed;
    e.tag = out[i].tag;
    e.result = out[i].result;
    record_->append(std::move(e));
  }
}

}  // namespace minivmm::storage
