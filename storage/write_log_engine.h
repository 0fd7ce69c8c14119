// An IoEngine decorator that writes host-level events to a WriteLog: each
// write (with its RWF_DSYNC flag and data), fdatasync and fallocate as it is
// handed to the engine, and each one's completion as it is reaped. It wraps
// the engine that talks to the kernel, so the log shows what the host really
// did, whatever the layers above it do (the power-loss checker trusts only
// these records for durability).
#pragma once

#include <memory>
#include <unordered_map>

#include "storage/io_engine.h"
#include "storage/write_log.h"

namespace minivmm::storage {

class WriteLogEngine final : public IoEngine {
 public:
  WriteLogEngine(std::shared_ptr<WriteLog> log, std::unique_ptr<IoEngine> host);
  std::string_view name() const override { return host_->name(); }
  void prepare(IoOp& op) override;
  void kick() override { host_->kick(); }
  int completion_fd() const override { return host_->completion_fd(); }
  void reap(std::vector<IoCompletion>& out) override;
  void wait() override { host_->wait(); }

 private:
  std::shared_ptr<WriteLog> log_;
  std::unique_ptr<IoEngine> host_;
  // Tag -> the "done" record type of a logged operation still in flight
  // (reads and no-ops are not logged).
  std::unordered_map<uint64_t, WriteLogType> in_flight_;
};

}  // namespace minivmm::storage
