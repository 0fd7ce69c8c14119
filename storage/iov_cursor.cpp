#include "storage/iov_cursor.h"

#include <algorithm>
#include <cstring>

namespace minivmm::storage {

uint64_t iov_total(std::span<const iovec> iov) {
  uint64_t total = 0;
  for (const iovec& v : iov) total += v.iov_len;
  return total;
}

namespace {

// Calls copy(segment byte pointer, flat position, n) over the iovec bytes
// [skip, skip + len).
template <typename Copy>
size_t for_each_range(std::span<const iovec> iov, uint64_t skip, size_t len, Copy copy) {
  size_t done = 0;
  for (const iovec& v : iov) {
    if (done == len) break;
    if (skip >= v.iov_len) {
      skip -= v.iov_len;
      continue;
    }
    const size_t n = std::min<uint64_t>(len - done, v.iov_len - skip);
    copy(static_cast<uint8_t*>(v.iov_base) + skip, done, n);
    done += n;
    skip = 0;
  }
  return done;
}

}  // namespace

size_t copy_from_iov(std::span<const iovec> iov, uint8_t* dst, size_t len, uint64_t skip) {
  return for_each_range(iov, skip, len, [dst](uint8_t* seg, size_t at, size_t n) {
    std::memcpy(dst + at, seg, n);
  });
}

size_t copy_to_iov(std::span<const iovec> iov, const uint8_t* src, size_t len, uint64_t skip) {
  return for_each_range(iov, skip, len, [src](uint8_t* seg, size_t at, size_t n) {
    std::memcpy(seg, src + at, n);
  });
}

IovCursor::IovCursor(std::span<const iovec> iov, uint64_t offset) { reset(iov, offset); }

void IovCursor::reset(std::span<const iovec> iov, uint64_t offset) {
  borrowed_ = iov;
  owned_ = false;
  size_ = 0;
  first_ = 0;
  spilled_.clear();  // keeps its capacity
  offset_ = offset;
  transferred_ = 0;
  remaining_ = iov_total(iov);
}

void IovCursor::take_copy() {
  const std::span<const iovec> rest = borrowed_.subspan(first_);
  if (rest.size() <= kInline) {
    std::copy(rest.begin(), rest.end(), inline_.begin());
  } else {
    spilled_.assign(rest.begin(), rest.end());
  }
  size_ = rest.size();
  first_ = 0;
  owned_ = true;
}

void IovCursor::advance(uint64_t bytes) {
  offset_ += bytes;
  transferred_ += bytes;
  remaining_ -= std::min(bytes, remaining_);
  // Whole segments (and empty ones) are skipped in place.
  const iovec* iov = list();
  const size_t size = list_size();
  while (first_ < size && bytes >= iov[first_].iov_len) {
    bytes -= iov[first_].iov_len;
    ++first_;
  }
  if (bytes == 0 || first_ == size) return;
  // The transfer ended inside a segment: trim it in a copy of our own.
  if (!owned_) take_copy();
  iovec& v = (size_ <= kInline ? inline_.data() : spilled_.data())[first_];
  v.iov_base = static_cast<uint8_t*>(v.iov_base) + bytes;
  v.iov_len -= bytes;
}

}  // namespace minivmm::storage
