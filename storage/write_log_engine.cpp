#include "storage/write_log_engine.h"

#include "storage/iov_cursor.h"

namespace minivmm::storage {

WriteLogEngine::WriteLogEngine(std::shared_ptr<WriteLog> log, std::unique_ptr<IoEngine> host)
    : log_(std::move(log)), host_(std::move(host)) {}

void WriteLogEngine::prepare(IoOp& op) {
  WriteLogRecord r{};
  r.id = op.tag;
  WriteLogType done = WriteLogType::HostWriteDone;
  switch (op.kind) {
    case IoOp::Kind::Write:
      r.type = static_cast<uint32_t>(WriteLogType::HostWriteIssued);
      r.flags = op.dsync ? kWriteLogDsync : 0;
      r.offset = op.offset;
      r.length = iov_total(op.iov);
      // Logged before the engine sees it: "issued" may precede the real
      // submission, never follow it (the checker's view stays conservative).
      log_->append(r, op.iov);
      break;
    case IoOp::Kind::Fdatasync:
      r.type = static_cast<uint32_t>(WriteLogType::HostFlushIssued);
      done = WriteLogType::HostFlushDone;
      log_->append(r);
      break;
    case IoOp::Kind::Fallocate:
      r.type = static_cast<uint32_t>(WriteLogType::HostFallocIssued);
      r.offset = op.offset;
      r.length = op.length;
      r.value = op.fallocate_mode;
      done = WriteLogType::HostFallocDone;
      log_->append(r);
      break;
    case IoOp::Kind::Read:
    case IoOp::Kind::Noop: host_->prepare(op); return;
  }
  in_flight_[op.tag] = done;
  host_->prepare(op);
}

void WriteLogEngine::reap(std::vector<IoCompletion>& out) {
  const size_t first = out.size();
  host_->reap(out);
  for (size_t i = first; i < out.size(); ++i) {
    auto it = in_flight_.find(out[i].tag);
    if (it == in_flight_.end()) continue;
    WriteLogRecord r{};
    r.type = static_cast<uint32_t>(it->second);
    r.id = out[i].tag;
    r.value = out[i].result;
    in_flight_.erase(it);
    // Logged after the kernel reported it: "done" may follow the real
    // completion, never precede it.
    log_->append(r);
  }
}

}  // namespace minivmm::storage
