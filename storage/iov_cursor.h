// Helpers over scatter-gather lists: total length, copying between a flat
// buffer and iovecs (bounce buffers), and a cursor that resumes a vectored
// transfer after a short read/write.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace minivmm::storage {

uint64_t iov_total(std::span<const iovec> iov);

// Copies min(len, total) bytes from the iovecs into dst; returns bytes copied.
size_t copy_from_iov(std::span<const iovec> iov, uint8_t* dst, size_t len);
// Copies min(len, total) bytes from src into the iovecs; returns bytes copied.
size_t copy_to_iov(std::span<const iovec> iov, const uint8_t* src, size_t len);

// Owns a copy of an iovec list and the file offset it targets; advance()
// drops the bytes already transferred so the rest can be resubmitted.
class IovCursor {
 public:
  IovCursor() = default;
  IovCursor(std::span<const iovec> iov, uint64_t offset);

  void advance(uint64_t bytes);
  bool done() const { return first_ == iov_.size(); }
  uint64_t offset() const { return offset_; }
  uint64_t transferred() const { return transferred_; }
  const iovec* data() const { return iov_.data() + first_; }
  int count() const { return static_cast<int>(iov_.size() - first_); }

 private:
  std::vector<iovec> iov_;
  size_t first_ = 0;
  uint64_t offset_ = 0;
  uint64_t transferred_ = 0;
};

}  // namespace minivmm::storage
