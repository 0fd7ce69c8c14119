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

// Walks a vectored transfer: the file offset and the iovecs still to go.
// It borrows the caller's iovec list (which must outlive it: DiskRequest's
// contract) and copies nothing while transfers are whole or end on a
// segment boundary; only a short transfer that ends inside a segment makes
// it keep its own copy of the rest (up to kInline segments inside the
// cursor, longer lists in a heap array reset() reuses).
class IovCursor {
 public:
  IovCursor() = default;
  IovCursor(std::span<const iovec> iov, uint64_t offset);
  void reset(std::span<const iovec> iov, uint64_t offset);

  void advance(uint64_t bytes);
  bool done() const { return remaining_ == 0; }
  uint64_t offset() const { return offset_; }
  uint64_t transferred() const { return transferred_; }
  uint64_t remaining() const { return remaining_; }  // bytes left to transfer
  const iovec* data() const { return list() + first_; }
  int count() const { return static_cast<int>(list_size() - first_); }
  // Whether the cursor holds its own copy (after a transfer ended inside a segment).
  bool copied() const { return owned_; }

 private:
  static constexpr size_t kInline = 4;
  const iovec* list() const {
    if (!owned_) return borrowed_.data();
    return size_ <= kInline ? inline_.data() : spilled_.data();
  }
  size_t list_size() const { return owned_ ? size_ : borrowed_.size(); }
  void take_copy();

  std::span<const iovec> borrowed_;  // the caller's list, until take_copy()
  bool owned_ = false;
  std::array<iovec, kInline> inline_{};
  std::vector<iovec> spilled_;  // used instead when there are more than kInline
  size_t size_ = 0;             // segments of the own copy
  size_t first_ = 0;            // first segment not done, in list()
  uint64_t offset_ = 0;
  uint64_t transferred_ = 0;
  uint64_t remaining_ = 0;
};

}  // namespace minivmm::storage
