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
  offset_ = offset;
  transferred_ = 0;
  remaining_ = 0;
  first_ = 0;
  spilled_.clear();  // keeps its capacity
  // Zero-length segments would make done() lie; drop them up front.
  const auto non_empty = [](const iovec& v) { return v.iov_len != 0; };
  size_ = static_cast<size_t>(std::count_if(iov.begin(), iov.end(), non_empty));
  iovec* out = size_ <= kInline ? inline_.data() : nullptr;
  for (const iovec& v : iov) {
    if (!non_empty(v)) continue;
    remaining_ += v.iov_len;
    if (out) {
      *out++ = v;
    } else {
      spilled_.push_back(v);
    }
  }
}

void IovCursor::advance(uint64_t bytes) {
  offset_ += bytes;
  transferred_ += bytes;
  remaining_ -= std::min(bytes, remaining_);
  iovec* iov = segments();
  while (bytes > 0 && first_ < size_) {
    iovec& v = iov[first_];
    const uint64_t n = std::min<uint64_t>(bytes, v.iov_len);
    v.iov_base = static_cast<uint8_t*>(v.iov_base) + n;
    v.iov_len -= n;
    bytes -= n;
    if (v.iov_len == 0) ++first_;
  }
}

}  // namespace minivmm::storage
