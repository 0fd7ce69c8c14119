// A decorator over any IoEngine that logs, in order, every operation handed to
// the kernel side (with its durability flag) and every completion. Tests use it
// to prove flush/DSYNC behaviour at the seam; a power-loss simulator can replay
// the log (with keep_write_data) to build "what stable storage holds" images.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "storage/io_engine.h"

namespace minivmm::storage {

struct TracedEvent {
  enum class Type { Issued, Completed };
  Type type = Type::Issued;
  uint64_t seq = 0;  // position in the log
  uint64_t tag = 0;  // the IoOp tag, pairs Issued with Completed
  IoOp::Kind kind = IoOp::Kind::Noop;
  uint64_t offset = 0;
  uint64_t length = 0;  // Read/Write: bytes; Fallocate: range length
  bool dsync = false;
  int fallocate_mode = 0;
  int64_t result = 0;         // Completed only
  std::vector<uint8_t> data;  // Issued writes, when keep_write_data is set
};

// The log, shared between the engine (inside a Disk) and whoever inspects it.
class IoTrace {
 public:
  explicit IoTrace(bool keep_write_data = false) : keep_write_data_(keep_write_data) {}

  const std::vector<TracedEvent>& events() const { return events_; }
  bool keep_write_data() const { return keep_write_data_; }
  void append(TracedEvent event);
  void clear() { events_.clear(); }

  // Issued operations of `kind`; with `dsync`, only those whose flag matches.
  size_t issued(IoOp::Kind kind, std::optional<bool> dsync = std::nullopt) const;
  size_t completed() const;

 private:
  bool keep_write_data_;
  std::vector<TracedEvent> events_;
};

class TracingEngine final : public IoEngine {
 public:
  TracingEngine(std::unique_ptr<IoEngine> inner, std::shared_ptr<IoTrace> trace);
  std::string_view name() const override { return inner_->name(); }
  void prepare(IoOp& op) override;
  void kick() override { inner_->kick(); }
  int completion_fd() const override { return inner_->completion_fd(); }
  void reap(std::vector<IoCompletion>& out) override;
  void wait() override { inner_->wait(); }

 private:
  std::unique_ptr<IoEngine> inner_;
  std::shared_ptr<IoTrace> trace_;
};

}  // namespace minivmm::storage
