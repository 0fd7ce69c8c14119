// The rules a request must meet before any system call: nothing a guest (or
// any other caller) asks for can touch bytes outside the image, modify a
// read-only one, or break the logical block size O_DIRECT needs. The one
// copy of these rules: the virtio-blk parser calls check_range() to answer a
// bad chain itself, and the Disk calls check_request() on everything
// submitted, whoever the caller.
#pragma once

#include <cstdint>
#include <string_view>

#include "storage/disk.h"
#include "storage/request_type.h"

namespace minivmm::storage {

struct ImageLimits {
  uint64_t size_bytes = 0;
  uint32_t block_size = 512;  // offsets and lengths must be multiples
  bool read_only = false;
};

// Why a request may not go ahead: the -errno the Disk completes it with and
// a phrase for the log. error == 0: it may.
struct Refusal {
  int error = 0;
  std::string_view why;
  explicit operator bool() const { return error != 0; }
};

// `type` over the bytes [offset, offset + length): -EROFS for a modification
// of a read-only image, -EINVAL for a misaligned one or one reaching any byte
// outside [0, size_bytes). Flush has no range.
Refusal check_range(RequestType type, uint64_t offset, uint64_t length, const ImageLimits& limits);

// Bytes a request covers: the iovec total for Read/Write, `length` for
// Discard/WriteZeroes, 0 for Flush. Sets `overflow` if the iovecs overflow.
uint64_t request_length(const DiskRequest& request, bool& overflow);

// check_range() for a DiskRequest (its length from request_length(); an
// iovec total that overflows is -EINVAL). 0 when it may go ahead.
int check_request(const DiskRequest& request, const ImageLimits& limits);

}  // namespace minivmm::storage
