#include "storage/iov_cursor.h"

#include <algorithm>
#include <cstring>

namespace minivmm::storage {

uint64_t iov_total(std::span<const iovec> iov) {
  uint64_t total = 0;
  for (const iovec& v : iov) total += v.iov_len;
  return total;
}

size_t copy_from_iov(std::span<const iovec> iov, uint8_t* dst, size_t len) {
  size_t done = 0;
  for (const iovec& v : iov) {
    if (done == len) break;
    const size_t n = std::min(len - done, v.iov_len);
    std::memcpy(dst + done, v.iov_base, n);
    done += n;
  }
  return done;
}

size_t copy_to_iov(std::span<const iovec> iov, const uint8_t* src, size_t len) {
  size_t done = 0;
  for (const iovec& v : iov) {
    if (done == len) break;
    const size_t n = std::min(len - done, v.iov_len);
    std::memcpy(v.iov_base, src + done, n);
    done += n;
  }
  return done;
}

IovCursor::IovCursor(std::span<const iovec> iov, uint64_t offset) : offset_(offset) {
  // Zero-length segments would make done() lie; drop them up front.
  const auto non_empty = [](const iovec& v) { return v.iov_len != 0; };
  size_ = static_cast<size_t>(std::count_if(iov.begin(), iov.end(), non_empty));
  if (size_ > kInline) spilled_.reserve(size_);
  iovec* out = size_ <= kInline ? inline_.data() : nullptr;
  for (const iovec& v : iov) {
    if (!non_empty(v)) continue;
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
