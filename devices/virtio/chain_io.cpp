#include "devices/virtio/chain_io.h"

#include <algorithm>
#include <cstring>

namespace minivmm::virtio {

ChainBytes::ChainBytes(std::span<iovec> buffers) : buffers_(buffers) {
  for (const iovec& v : buffers) remaining_ += v.iov_len;
}

void ChainBytes::truncate(uint64_t len) {
  if (len >= remaining_) return;
  remaining_ = len;
  size_t end = first_;
  for (; len > 0; ++end) {
    iovec& v = buffers_[end];
    v.iov_len = std::min<uint64_t>(v.iov_len, len);
    len -= v.iov_len;
  }
  buffers_ = buffers_.first(end);
}

template <typename Fn>
bool ChainBytes::consume(uint64_t len, Fn&& fn) {
  if (len > remaining_) return false;
  remaining_ -= len;
  while (len > 0) {
    iovec& v = buffers_[first_];
    const uint64_t n = std::min<uint64_t>(len, v.iov_len);
    fn(static_cast<uint8_t*>(v.iov_base), n);
    v.iov_base = static_cast<uint8_t*>(v.iov_base) + n;
    v.iov_len -= n;
    len -= n;
    if (v.iov_len == 0) ++first_;
  }
  return true;
}

bool ChainReader::read(void* out, uint64_t len) {
  auto* dst = static_cast<uint8_t*>(out);
  return consume(len, [&dst](const uint8_t* host, uint64_t n) {
    std::memcpy(dst, host, n);
    dst += n;
  });
}

bool ChainWriter::write(const void* src, uint64_t len) {
  const auto* from = static_cast<const uint8_t*>(src);
  return consume(len, [&from](uint8_t* host, uint64_t n) {
    std::memcpy(host, from, n);
    from += n;
  });
}

uint8_t* ChainWriter::take_last_byte() {
  if (remaining_ == 0) return nullptr;
  iovec& last = buffers_.back();  // never empty while bytes remain
  --last.iov_len;
  --remaining_;
  uint8_t* byte = static_cast<uint8_t*>(last.iov_base) + last.iov_len;
  if (last.iov_len == 0) buffers_ = buffers_.first(buffers_.size() - 1);
  return byte;
}

MappedChain map_chain(const GuestMemory& mem, const DescriptorChain& chain, uint32_t max_buffer_len,
                      std::vector<iovec>& storage) {
  storage.clear();  // keeps its capacity
  MappedChain m;
  size_t readable = 0;
  bool writable_seen = false;
  for (const Descriptor& d : chain.descriptors) {
    // Bounding every buffer bounds what one request can make the host do.
    if (max_buffer_len != 0 && d.len > max_buffer_len) {
      m.error = "buffer larger than size_max";
      return m;
    }
    uint8_t* host = mem.translate(d.addr, d.len);
    if (!host) {
      m.error = "buffer outside guest RAM";
      return m;
    }
    if (!d.device_writable && writable_seen) {
      m.error = "readable after writable";
      return m;
    }
    writable_seen |= d.device_writable;
    if (d.len == 0) continue;
    storage.push_back({host, d.len});
    if (!d.device_writable) ++readable;
  }
  const std::span<iovec> all(storage);
  m.reader = ChainReader(all.first(readable));
  m.writer = ChainWriter(all.subspan(readable));
  return m;
}

}  // namespace minivmm::virtio
