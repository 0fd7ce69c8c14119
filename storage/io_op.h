// One host operation and the engine's progress on it. The op is the
// caller's (ImageDisk keeps it inside the request it serves): an IoEngine
// keeps a pointer to it from prepare() until its completion is reaped, and
// identifies it by that pointer (the io_uring SQE's user data), so an op in
// flight costs the engine no record of its own.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>

#include "storage/iov_cursor.h"

namespace minivmm::storage {

struct IoOp {
  enum class Kind { Read, Write, Fdatasync, Fallocate, Noop };
  Kind kind = Kind::Noop;
  int fd = -1;
  uint64_t offset = 0;
  // Read/Write: borrowed, not copied; valid until the completion is reaped.
  std::span<const iovec> iov;
  uint64_t length = 0;     // Fallocate
  int fallocate_mode = 0;  // Fallocate: FALLOC_FL_* flags
  bool dsync = false;      // Write: RWF_DSYNC (durable before completion)
  uint64_t tag = 0;        // returned unchanged in the completion
  // Read/Write on an fd without O_DIRECT: the engine may serve it inline
  // from the page cache (UringEngine::try_inline).
  bool buffered = false;
  // The engine's, between prepare() and the completion: Read/Write progress
  // over `iov`, for resubmitting a short transfer (reset by prepare()).
  IovCursor progress;
};

struct IoCompletion {
  uint64_t tag = 0;
  int64_t result = 0;  // bytes transferred (Read/Write), 0, or -errno
};

}  // namespace minivmm::storage
