// Helpers over scatter-gather lists: total length, copying between a flat
// buffer and iovecs (bounce buffers), and a cursor that resumes a vectored
// transfer after a short read/write.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace minivmm::storage {

uint64_t iov_total(std::span<const iovec> iov);

// Copies up to `len` bytes, starting `skip` bytes into the iovecs, into dst;
// returns bytes copied.
size_t copy_from_iov(std::span<const iovec> iov, uint8_t* dst, size_t len, uint64_t skip = 0);
// Copies up to `len` bytes from src into the iovecs, starting `skip` bytes
// into them; returns bytes copied.
size_t copy_to_iov(std::span<const iovec> iov, const uint8_t* src, size_t len, uint64_t skip = 0);

// Owns a copy of an iovec list and the file offset it targets; advance()
// drops the bytes already transferred so the rest can be resubmitted.
// Up to kInline segments live inside the cursor; longer lists go to a heap
// array that reset() reuses, so a pooled cursor allocates only when a list
// is longer than any before it.
class IovCursor {
 public:
  IovCursor() = default;
  IovCursor(std::span<const iovec> iov, uint64_t offset);
  void reset(std::span<const iovec> iov, uint64_t offset);

  void advance(uint64_t bytes);
  bool done() const { return first_ == size_; }
  uint64_t offset() const { return offset_; }
  uint64_t transferred() const { return transferred_; }
  uint64_t remaining() const { return remaining_; }  // bytes left to transfer
  const iovec* data() const { return segments() + first_; }
  int count() const { return static_cast<int>(size_ - first_); }

 private:
  static constexpr size_t kInline = 4;
  const iovec* segments() const { return size_ <= kInline ? inline_.data() : spilled_.data(); }
  iovec* segments() { return size_ <= kInline ? inline_.data() : spilled_.data(); }

  std::array<iovec, kInline> inline_{};
  std::vector<iovec> spilled_;  // used instead when there are more than kInline
  size_t size_ = 0;             // non-empty segments
  size_t first_ = 0;
  uint64_t offset_ = 0;
  uint64_t transferred_ = 0;
  uint64_t remaining_ = 0;
};

}  // namespace minivmm::storage
