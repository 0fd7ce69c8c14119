#include "storage/io_engine.h"

#include <spdlog/spdlog.h>

#include "common/error.h"

namespace minivmm::storage {

std::unique_ptr<IoEngine> make_io_engine(IoEngineKind kind, unsigned queue_depth) {
  switch (kind) {
    case IoEngineKind::Sync: return make_sync_engine();
    case IoEngineKind::IoUring: return make_uring_engine(queue_depth);
    case IoEngineKind::Auto: break;
  }
  try {
    return make_uring_engine(queue_depth);
  } catch (const Error& e) {
    spdlog::warn("storage: io_uring unavailable ({}); using the synchronous engine", e.what());
    return make_sync_engine();
  }
}

std::string_view to_string(IoOp::Kind kind) {
  switch (kind) {
    case IoOp::Kind::Read: return "read";
    case IoOp::Kind::Write: return "write";
    case IoOp::Kind::Fdatasync: return "fdatasync";
    case IoOp::Kind::Fallocate: return "fallocate";
    case IoOp::Kind::Noop: return "noop";
  }
  return "invalid";
}

}  // namespace minivmm::storage
