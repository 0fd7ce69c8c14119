// A disk's O_DIRECT bounce buffers, bounded in total: at most `capacity`
// buffers of `buffer_bytes` each exist at once, whatever the guest keeps in
// flight. A request takes one for its transfer and gives it back when the
// transfer ends; when all are out, take() returns an empty buffer and the
// caller queues the request until one comes back (ImageDisk does, FIFO).
//
// Allocated lazily, kept once allocated: a disk whose guest never sends a
// misaligned buffer (or one not opened O_DIRECT) costs nothing, and one
// that bounces pays posix_memalign + zero-fill once per buffer, not once
// per request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "storage/aligned_buffer.h"

namespace minivmm::storage {

class BouncePool {
 public:
  struct Shape {
    size_t capacity = 0;      // buffers, at most
    size_t buffer_bytes = 0;  // each
    size_t alignment = 0;     // of each buffer's start
  };
  explicit BouncePool(const Shape& shape);

  // A free buffer (allocated now if none was yet), or an empty one
  // (data() == nullptr) when all `capacity` are taken. Throws
  // minivmm::Error when an allocation fails.
  AlignedBuffer take();
  // Returns a buffer that take() handed out.
  void give_back(AlignedBuffer buffer);

  size_t capacity() const { return capacity_; }
  size_t buffer_bytes() const { return buffer_bytes_; }
  size_t taken() const { return taken_; }
  uint64_t bound_bytes() const { return uint64_t{capacity_} * buffer_bytes_; }
  // Memory the pool has allocated (free buffers plus taken ones).
  uint64_t allocated_bytes() const { return uint64_t{allocated_} * buffer_bytes_; }

 private:
  size_t capacity_;
  size_t buffer_bytes_;
  size_t alignment_;
  std::vector<AlignedBuffer> free_;
  size_t taken_ = 0;
  size_t allocated_ = 0;
};

}  // namespace minivmm::storage
