// Up-front validation of a DiskRequest, before any system call: nothing a
// guest asks for can touch bytes outside the image or break O_DIRECT rules.
#pragma once

#include <cstdint>

#include "storage/disk.h"

namespace minivmm::storage {

struct ImageLimits {
  uint64_t size_bytes = 0;
  uint32_t block_size = 512;  // offsets and lengths must be multiples
  bool read_only = false;
};

// Bytes a request covers: the iovec total for Read/Write, `length` for
// Discard/WriteZeroes, 0 for Flush. Sets `overflow` if the iovecs overflow.
uint64_t request_length(const DiskRequest& request, bool& overflow);

// 0 when the request may go ahead, else -EROFS (modifying a read-only disk)
// or -EINVAL (misaligned, or any byte outside [0, size_bytes)).
int check_request(const DiskRequest& request, const ImageLimits& limits);

}  // namespace minivmm::storage
