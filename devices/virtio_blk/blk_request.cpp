#include "devices/virtio_blk/blk_request.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <span>

#include "devices/virtio_blk/virtio_blk_spec.h"

namespace minivmm::virtio::blk {

namespace {

using Kind = BlkRequest::Kind;

// The device-readable or device-writable bytes of a chain, as host buffers.
// The usual chain (header, data, status) needs two buffers per direction:
// those live inline, so parsing allocates nothing; longer chains spill to
// the heap.
struct ByteStream {
  static constexpr size_t kInline = 4;
  std::array<iovec, kInline> inline_buffers{};
  std::vector<iovec> spilled;  // all buffers, once there are more than kInline
  size_t count = 0;
  uint64_t total = 0;

  std::span<const iovec> buffers() const {
    return count <= kInline ? std::span<const iovec>(inline_buffers.data(), count)
                            : std::span<const iovec>(spilled);
  }

  void append(uint8_t* host, uint32_t len) {
    if (len == 0) return;
    const iovec v{host, len};
    if (count < kInline) {
      inline_buffers[count] = v;
    } else {
      if (count == kInline) spilled.assign(inline_buffers.begin(), inline_buffers.end());
      spilled.push_back(v);
    }
    ++count;
    total += len;
  }

  // Copies `len` bytes starting at `offset`; false if the stream is shorter.
  bool copy_out(uint64_t offset, void* out, uint64_t len) const {
    if (offset > total || len > total - offset) return false;
    auto* dst = static_cast<uint8_t*>(out);
    for (const iovec& b : buffers()) {
      if (len == 0) break;
      if (offset >= b.iov_len) {
        offset -= b.iov_len;
        continue;
      }
      const uint64_t n = std::min<uint64_t>(b.iov_len - offset, len);
      std::memcpy(dst, static_cast<uint8_t*>(b.iov_base) + offset, n);
      dst += n;
      len -= n;
      offset = 0;
    }
    return true;
  }

  // Buffers covering [offset, offset + len); the caller checked the range.
  std::vector<iovec> slice(uint64_t offset, uint64_t len) const {
    std::vector<iovec> out;
    out.reserve(count);  // one allocation, never a regrowth
    for (const iovec& b : buffers()) {
      if (len == 0) break;
      if (offset >= b.iov_len) {
        offset -= b.iov_len;
        continue;
      }
      const uint64_t n = std::min<uint64_t>(b.iov_len - offset, len);
      out.push_back({static_cast<uint8_t*>(b.iov_base) + offset, n});
      len -= n;
      offset = 0;
    }
    return out;
  }
};

struct Segment {
  uint64_t sector;
  uint32_t num_sectors;
  uint32_t flags;
};
static_assert(sizeof(Segment) == kSegmentSize);

BlkRequest fail(BlkRequest r, Kind kind, std::string_view why) {
  r.kind = kind;
  r.why = why;
  r.data.clear();
  r.used_len = 1;  // just the status byte
  return r;
}

// [sector, sector + sectors) inside the disk, without overflow.
bool in_capacity(uint64_t sector, uint64_t sectors, uint64_t capacity) {
  return sector <= capacity && sectors <= capacity - sector;
}

BlkRequest parse_segment_request(BlkRequest r, const ByteStream& readable,
                                 const RequestLimits& limits, bool discard) {
  if (!(discard ? limits.discard : limits.write_zeroes)) {
    return fail(std::move(r), Kind::Unsupported, "discard/write zeroes not negotiated");
  }
  const uint64_t payload = readable.total - kRequestHeaderSize;
  if (payload == 0 || payload % kSegmentSize != 0) {
    return fail(std::move(r), Kind::Invalid, "discard/write zeroes payload not whole segments");
  }
  // max_discard_seg = max_write_zeroes_seg = 1 (5.2.4).
  if (payload / kSegmentSize > 1) {
    return fail(std::move(r), Kind::Unsupported, "more segments than max_*_seg");
  }
  Segment seg{};
  readable.copy_out(kRequestHeaderSize, &seg, sizeof(seg));
  // 5.2.6.2: reserved flag bits, and unmap on discard, are unsupported.
  if (seg.flags & ~kSegmentFlagUnmap) {
    return fail(std::move(r), Kind::Unsupported, "reserved segment flags set");
  }
  if (discard && (seg.flags & kSegmentFlagUnmap)) {
    return fail(std::move(r), Kind::Unsupported, "unmap flag on discard");
  }
  const uint32_t max = discard ? limits.max_discard_sectors : limits.max_write_zeroes_sectors;
  if (seg.num_sectors > max) {
    return fail(std::move(r), Kind::Invalid, "segment larger than max_*_sectors");
  }
  if (!in_capacity(seg.sector, seg.num_sectors, limits.capacity_sectors)) {
    return fail(std::move(r), Kind::Invalid, "segment beyond capacity");
  }
  if (limits.read_only) return fail(std::move(r), Kind::Invalid, "disk is read-only");
  r.kind = discard ? Kind::Discard : Kind::WriteZeroes;
  r.offset = seg.sector * kSectorSize;
  r.length = uint64_t{seg.num_sectors} * kSectorSize;
  r.unmap = !discard && (seg.flags & kSegmentFlagUnmap);
  r.used_len = 1;
  return r;
}

}  // namespace

BlkRequest parse_blk_request(const GuestMemory& mem, const DescriptorChain& chain,
                             const RequestLimits& limits) {
  BlkRequest r;
  if (chain.error != ChainError::None) {
    r.why = describe(chain.error);
    return r;  // NoStatus: no trustworthy last descriptor
  }
  if (chain.descriptors.empty()) {
    r.why = "empty chain";
    return r;
  }
  // 5.2.6: the status byte is the last byte of the last descriptor, which
  // must be device-writable.
  const Descriptor& last = chain.descriptors.back();
  if (!last.device_writable || last.len == 0) {
    r.why = "last descriptor is not a writable status byte";
    return r;
  }
  r.status = mem.translate(last.addr + last.len - 1, 1);
  if (last.addr + last.len - 1 < last.addr || !r.status) {
    r.status = nullptr;
    r.why = "status byte outside guest RAM";
    return r;
  }

  ByteStream readable;
  ByteStream writable;
  bool writable_seen = false;
  for (size_t i = 0; i < chain.descriptors.size(); ++i) {
    const Descriptor& d = chain.descriptors[i];
    // 5.2.6.1: the driver must not exceed size_max; bounding every buffer
    // bounds what one request can make the host do.
    if (limits.size_max != 0 && d.len > limits.size_max) {
      return fail(std::move(r), Kind::Invalid, "buffer larger than size_max");
    }
    uint8_t* host = mem.translate(d.addr, d.len);
    if (!host) return fail(std::move(r), Kind::Invalid, "buffer outside guest RAM");
    if (d.device_writable) {
      writable_seen = true;
      // The status byte is not data: keep it out of the writable stream.
      writable.append(host, i + 1 == chain.descriptors.size() ? d.len - 1 : d.len);
    } else {
      // 2.7.4.2: readable descriptors must all come before writable ones.
      if (writable_seen) return fail(std::move(r), Kind::Invalid, "readable after writable");
      readable.append(host, d.len);
    }
  }

  struct {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
  } header{};
  static_assert(sizeof(header) == kRequestHeaderSize);
  if (!readable.copy_out(0, &header, sizeof(header))) {
    return fail(std::move(r), Kind::Invalid, "request header shorter than 16 bytes");
  }

  switch (header.type) {
    case kTypeIn:
    case kTypeOut: {
      const bool is_read = header.type == kTypeIn;
      // Data in the wrong direction (readable bytes after a read's header,
      // writable bytes besides a write's status) is a malformed request.
      if (is_read && readable.total != kRequestHeaderSize) {
        return fail(std::move(r), Kind::Invalid, "read request with device-readable data");
      }
      if (!is_read && writable.total != 0) {
        return fail(std::move(r), Kind::Invalid, "write request with device-writable data");
      }
      const uint64_t len = is_read ? writable.total : readable.total - kRequestHeaderSize;
      if (len % kSectorSize != 0) {
        return fail(std::move(r), Kind::Invalid, "data length not a multiple of 512");
      }
      if (!in_capacity(header.sector, len / kSectorSize, limits.capacity_sectors)) {
        return fail(std::move(r), Kind::Invalid, "sectors beyond capacity");
      }
      if (!is_read && limits.read_only) {
        return fail(std::move(r), Kind::Invalid, "write to a read-only disk");
      }
      if (is_read && len + 1 > std::numeric_limits<uint32_t>::max()) {
        return fail(std::move(r), Kind::Invalid, "read longer than 4 GiB");
      }
      r.kind = is_read ? Kind::Read : Kind::Write;
      r.offset = header.sector * kSectorSize;
      r.length = len;
      r.data = is_read ? writable.slice(0, len) : readable.slice(kRequestHeaderSize, len);
      r.used_len = is_read ? static_cast<uint32_t>(len + 1) : 1;
      return r;
    }
    case kTypeFlush:
      r.kind = Kind::Flush;
      r.used_len = 1;
      return r;
    case kTypeGetId: {
      if (writable.total == 0) return fail(std::move(r), Kind::Invalid, "GET_ID without buffer");
      const uint64_t len = std::min<uint64_t>(writable.total, kIdBytes);
      r.kind = Kind::GetId;
      r.data = writable.slice(0, len);
      r.length = len;
      r.used_len = static_cast<uint32_t>(len + 1);
      return r;
    }
    case kTypeDiscard: return parse_segment_request(std::move(r), readable, limits, true);
    case kTypeWriteZeroes: return parse_segment_request(std::move(r), readable, limits, false);
    default: return fail(std::move(r), Kind::Unsupported, "unknown request type");
  }
}

}  // namespace minivmm::virtio::blk
