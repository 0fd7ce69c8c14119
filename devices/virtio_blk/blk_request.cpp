#include "devices/virtio_blk/blk_request.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <span>

#include "devices/virtio_blk/virtio_blk_spec.h"

namespace minivmm::virtio::blk {

namespace {

using Disposition = BlkRequest::Disposition;
using storage::RequestType;

// The device-readable or device-writable bytes of a chain, read in place:
// a view over the chain's descriptors of one direction (the status byte
// left out), so parsing any chain allocates nothing. Every buffer was
// translated once by parse_blk_request_into before a stream is used.
struct ByteStream {
  const GuestMemory& mem;
  std::span<const Descriptor> descriptors;  // the whole chain
  bool writable = false;                    // which direction this stream is
  uint64_t total = 0;

  // Bytes of descriptor `i` that belong to this stream.
  uint64_t length_of(size_t i) const {
    const Descriptor& d = descriptors[i];
    if (d.device_writable != writable) return 0;
    return i + 1 == descriptors.size() ? d.len - 1 : d.len;  // the status byte is not data
  }

  // Calls fn(host, n) for the buffers covering [offset, offset + len); the
  // caller checked the range.
  template <typename Fn>
  void for_range(uint64_t offset, uint64_t len, Fn&& fn) const {
    for (size_t i = 0; i < descriptors.size() && len > 0; ++i) {
      const uint64_t size = length_of(i);
      if (offset >= size) {
        offset -= size;
        continue;
      }
      const uint64_t n = std::min<uint64_t>(size - offset, len);
      fn(mem.translate(descriptors[i].addr, descriptors[i].len) + offset, n);
      len -= n;
      offset = 0;
    }
  }

  // Copies `len` bytes starting at `offset`; false if the stream is shorter.
  bool copy_out(uint64_t offset, void* out, uint64_t len) const {
    if (offset > total || len > total - offset) return false;
    auto* dst = static_cast<uint8_t*>(out);
    for_range(offset, len, [&](uint8_t* host, uint64_t n) {
      std::memcpy(dst, host, n);
      dst += n;
    });
    return true;
  }

  // The buffers covering [offset, offset + len) into `out`, reusing its
  // capacity (no allocation once it has grown to the longest chain).
  void slice_into(uint64_t offset, uint64_t len, std::vector<iovec>& out) const {
    out.clear();
    for_range(offset, len, [&](uint8_t* host, uint64_t n) { out.push_back({host, n}); });
  }
};

struct Segment {
  uint64_t sector;
  uint32_t num_sectors;
  uint32_t flags;
};
static_assert(sizeof(Segment) == kSegmentSize);

void fail(BlkRequest& r, Disposition disposition, std::string_view why) {
  r.disposition = disposition;
  r.why = why;
  r.data.clear();
  r.used_len = 1;  // just the status byte
}

// The disk's own rules (size, block size, read-only) over the byte range
// `sectors` from `sector`, as one refusal reason; empty when it may go ahead.
// A sector number whose byte offset does not fit in 64 bits is past any disk.
std::string_view refuse_range(RequestType type, uint64_t sector, uint64_t bytes,
                              const RequestLimits& limits, uint64_t& offset) {
  if (__builtin_mul_overflow(sector, kSectorSize, &offset)) return "beyond the end of the disk";
  return storage::check_range(type, offset, bytes, limits.image).why;
}

void parse_segment_request(BlkRequest& r, const ByteStream& readable, const RequestLimits& limits,
                           bool discard) {
  if (!(discard ? limits.discard : limits.write_zeroes)) {
    return fail(r, Disposition::Unsupported, "discard/write zeroes not negotiated");
  }
  const uint64_t payload = readable.total - kRequestHeaderSize;
  if (payload == 0 || payload % kSegmentSize != 0) {
    return fail(r, Disposition::Invalid, "discard/write zeroes payload not whole segments");
  }
  // max_discard_seg = max_write_zeroes_seg = 1 (5.2.4).
  if (payload / kSegmentSize > 1) {
    return fail(r, Disposition::Unsupported, "more segments than max_*_seg");
  }
  Segment seg{};
  readable.copy_out(kRequestHeaderSize, &seg, sizeof(seg));
  // 5.2.6.2: reserved flag bits, and unmap on discard, are unsupported.
  if (seg.flags & ~kSegmentFlagUnmap) {
    return fail(r, Disposition::Unsupported, "reserved segment flags set");
  }
  if (discard && (seg.flags & kSegmentFlagUnmap)) {
    return fail(r, Disposition::Unsupported, "unmap flag on discard");
  }
  const uint32_t max = discard ? limits.max_discard_sectors : limits.max_write_zeroes_sectors;
  if (seg.num_sectors > max) {
    return fail(r, Disposition::Invalid, "segment larger than max_*_sectors");
  }
  const RequestType type = discard ? RequestType::Discard : RequestType::WriteZeroes;
  const uint64_t length = uint64_t{seg.num_sectors} * kSectorSize;
  uint64_t offset = 0;
  const std::string_view refused = refuse_range(type, seg.sector, length, limits, offset);
  if (!refused.empty()) return fail(r, Disposition::Invalid, refused);
  r.disposition = Disposition::ToDisk;
  r.type = type;
  r.offset = offset;
  r.length = length;
  r.unmap = !discard && (seg.flags & kSegmentFlagUnmap);
  r.used_len = 1;
}

}  // namespace

BlkRequest parse_blk_request(const GuestMemory& mem, const DescriptorChain& chain,
                             const RequestLimits& limits) {
  BlkRequest r;
  parse_blk_request_into(mem, chain, limits, r);
  return r;
}

void parse_blk_request_into(const GuestMemory& mem, const DescriptorChain& chain,
                            const RequestLimits& limits, BlkRequest& r) {
  r.disposition = Disposition::NoStatus;
  r.type = RequestType::Read;
  r.status = nullptr;
  r.offset = 0;
  r.length = 0;
  r.unmap = false;
  r.data.clear();  // keeps its capacity
  r.used_len = 0;
  r.why = {};
  if (chain.error != ChainError::None) {
    r.why = describe(chain.error);
    return;  // NoStatus: no trustworthy last descriptor
  }
  if (chain.descriptors.empty()) {
    r.why = "empty chain";
    return;
  }
  // 5.2.6: the status byte is the last byte of the last descriptor, which
  // must be device-writable.
  const Descriptor& last = chain.descriptors.back();
  if (!last.device_writable || last.len == 0) {
    r.why = "last descriptor is not a writable status byte";
    return;
  }
  r.status = mem.translate(last.addr + last.len - 1, 1);
  if (last.addr + last.len - 1 < last.addr || !r.status) {
    r.status = nullptr;
    r.why = "status byte outside guest RAM";
    return;
  }

  ByteStream readable{mem, chain.descriptors, false};
  ByteStream writable{mem, chain.descriptors, true};
  bool writable_seen = false;
  for (size_t i = 0; i < chain.descriptors.size(); ++i) {
    const Descriptor& d = chain.descriptors[i];
    // 5.2.6.1: the driver must not exceed size_max; bounding every buffer
    // bounds what one request can make the host do.
    if (limits.size_max != 0 && d.len > limits.size_max) {
      return fail(r, Disposition::Invalid, "buffer larger than size_max");
    }
    if (!mem.translate(d.addr, d.len))
      return fail(r, Disposition::Invalid, "buffer outside guest RAM");
    if (d.device_writable) {
      writable_seen = true;
      writable.total += writable.length_of(i);
    } else {
      // 2.7.4.2: readable descriptors must all come before writable ones.
      if (writable_seen) return fail(r, Disposition::Invalid, "readable after writable");
      readable.total += readable.length_of(i);
    }
  }

  struct {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
  } header{};
  static_assert(sizeof(header) == kRequestHeaderSize);
  if (!readable.copy_out(0, &header, sizeof(header))) {
    return fail(r, Disposition::Invalid, "request header shorter than 16 bytes");
  }

  switch (header.type) {
    case kTypeIn:
    case kTypeOut: {
      const bool is_read = header.type == kTypeIn;
      // Data in the wrong direction (readable bytes after a read's header,
      // writable bytes besides a write's status) is a malformed request.
      if (is_read && readable.total != kRequestHeaderSize) {
        return fail(r, Disposition::Invalid, "read request with device-readable data");
      }
      if (!is_read && writable.total != 0) {
        return fail(r, Disposition::Invalid, "write request with device-writable data");
      }
      const uint64_t len = is_read ? writable.total : readable.total - kRequestHeaderSize;
      const RequestType type = is_read ? RequestType::Read : RequestType::Write;
      uint64_t offset = 0;
      const std::string_view refused = refuse_range(type, header.sector, len, limits, offset);
      if (!refused.empty()) return fail(r, Disposition::Invalid, refused);
      if (is_read && len + 1 > std::numeric_limits<uint32_t>::max()) {
        return fail(r, Disposition::Invalid, "read longer than 4 GiB");
      }
      r.disposition = Disposition::ToDisk;
      r.type = type;
      r.offset = offset;
      r.length = len;
      if (is_read) {
        writable.slice_into(0, len, r.data);
      } else {
        readable.slice_into(kRequestHeaderSize, len, r.data);
      }
      r.used_len = is_read ? static_cast<uint32_t>(len + 1) : 1;
      return;
    }
    case kTypeFlush:
      r.disposition = Disposition::ToDisk;
      r.type = RequestType::Flush;
      r.used_len = 1;
      return;
    case kTypeGetId: {
      if (writable.total == 0) return fail(r, Disposition::Invalid, "GET_ID without buffer");
      const uint64_t len = std::min<uint64_t>(writable.total, kIdBytes);
      r.disposition = Disposition::GetId;
      writable.slice_into(0, len, r.data);
      r.length = len;
      r.used_len = static_cast<uint32_t>(len + 1);
      return;
    }
    case kTypeDiscard: return parse_segment_request(r, readable, limits, true);
    case kTypeWriteZeroes: return parse_segment_request(r, readable, limits, false);
    default:
      // Every other type (GET_LIFETIME, SECURE_ERASE, the zoned ones, and
      // values the spec does not define) is refused here, before the disk.
      return fail(r, Disposition::Unsupported, "unknown request type");
  }
}

}  // namespace minivmm::virtio::blk
