#include "devices/virtio_blk/blk_request.h"

#include <algorithm>
#include <limits>

#include "devices/virtio/chain_io.h"
#include "devices/virtio_blk/virtio_blk_spec.h"

namespace minivmm::virtio::blk {

namespace {

using Disposition = BlkRequest::Disposition;
using storage::RequestType;

struct Segment {
  uint64_t sector;
  uint32_t num_sectors;
  uint32_t flags;
};
static_assert(sizeof(Segment) == kSegmentSize);

struct Header {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};
static_assert(sizeof(Header) == kRequestHeaderSize);

// A byte range of the disk as the guest gave it: in sectors.
struct SectorRange {
  uint64_t sector = 0;
  uint64_t bytes = 0;
};

void fail(BlkRequest& r, Disposition disposition, std::string_view why) {
  r.disposition = disposition;
  r.why = why;
  r.data = {};
  r.used_len = 1;  // just the status byte
}

// The disk's own rules (size, block size, read-only) over `range`, as one
// refusal reason; empty when it may go ahead, with `offset` its first byte.
// A sector number whose byte offset does not fit in 64 bits is past any disk.
std::string_view refuse_range(RequestType type, SectorRange range, const RequestLimits& limits,
                              uint64_t& offset) {
  if (__builtin_mul_overflow(range.sector, kSectorSize, &offset)) {
    return "beyond the end of the disk";
  }
  return storage::check_range(type, offset, range.bytes, limits.image).why;
}

// `reader` is past the header.
void parse_segment_request(BlkRequest& r, ChainReader& reader, const RequestLimits& limits,
                           bool discard) {
  if (!(discard ? limits.discard : limits.write_zeroes)) {
    return fail(r, Disposition::Unsupported, "discard/write zeroes not negotiated");
  }
  const uint64_t payload = reader.remaining();
  if (payload == 0 || payload % kSegmentSize != 0) {
    return fail(r, Disposition::Invalid, "discard/write zeroes payload not whole segments");
  }
  // max_discard_seg = max_write_zeroes_seg = 1 (5.2.4).
  if (payload / kSegmentSize > 1) {
    return fail(r, Disposition::Unsupported, "more segments than max_*_seg");
  }
  Segment seg{};
  reader.read_obj(seg);
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
  const std::string_view refused = refuse_range(type, {seg.sector, length}, limits, offset);
  if (!refused.empty()) return fail(r, Disposition::Invalid, refused);
  r.disposition = Disposition::ToDisk;
  r.type = type;
  r.offset = offset;
  r.length = length;
  r.unmap = !discard && (seg.flags & kSegmentFlagUnmap);
  r.used_len = 1;
}

// Read or write: the data is what the reader (write) or the writer (read,
// status byte taken off) has left after the header.
void parse_transfer(BlkRequest& r, const Header& header, MappedChain& chain,
                    const RequestLimits& limits) {
  const bool is_read = header.type == kTypeIn;
  // Data in the wrong direction (readable bytes after a read's header,
  // writable bytes besides a write's status) is a malformed request.
  if (is_read && chain.reader.remaining() != 0) {
    return fail(r, Disposition::Invalid, "read request with device-readable data");
  }
  if (!is_read && chain.writer.remaining() != 0) {
    return fail(r, Disposition::Invalid, "write request with device-writable data");
  }
  const ChainBytes& data = is_read ? static_cast<const ChainBytes&>(chain.writer) : chain.reader;
  const uint64_t len = data.remaining();
  const RequestType type = is_read ? RequestType::Read : RequestType::Write;
  uint64_t offset = 0;
  const std::string_view refused = refuse_range(type, {header.sector, len}, limits, offset);
  if (!refused.empty()) return fail(r, Disposition::Invalid, refused);
  if (is_read && len + 1 > std::numeric_limits<uint32_t>::max()) {
    return fail(r, Disposition::Invalid, "read longer than 4 GiB");
  }
  r.disposition = Disposition::ToDisk;
  r.type = type;
  r.offset = offset;
  r.length = len;
  r.data = data.rest();
  r.used_len = is_read ? static_cast<uint32_t>(len + 1) : 1;
}

void parse_get_id(BlkRequest& r, ChainWriter& writer) {
  if (writer.remaining() == 0) return fail(r, Disposition::Invalid, "GET_ID without buffer");
  writer.truncate(kIdBytes);
  r.disposition = Disposition::GetId;
  r.length = writer.remaining();
  r.data = writer.rest();
  r.used_len = static_cast<uint32_t>(r.length + 1);
}

void clear(BlkRequest& r) {
  r.disposition = Disposition::NoStatus;
  r.type = RequestType::Read;
  r.status = nullptr;
  r.offset = 0;
  r.length = 0;
  r.unmap = false;
  r.data = {};
  r.used_len = 0;
  r.why = {};
}

// 5.2.6: the status byte is the last byte of the last descriptor, which
// must be device-writable. False (NoStatus, with the reason) when there is
// no such byte in guest RAM.
bool locate_status(const GuestMemory& mem, const DescriptorChain& chain, BlkRequest& r) {
  if (chain.error != ChainError::None) {
    r.why = describe(chain.error);
    return false;  // no trustworthy last descriptor
  }
  if (chain.descriptors.empty()) {
    r.why = "empty chain";
    return false;
  }
  const Descriptor& last = chain.descriptors.back();
  if (!last.device_writable || last.len == 0) {
    r.why = "last descriptor is not a writable status byte";
    return false;
  }
  r.status = mem.translate(last.addr + last.len - 1, 1);
  if (last.addr + last.len - 1 < last.addr || !r.status) {
    r.status = nullptr;
    r.why = "status byte outside guest RAM";
    return false;
  }
  return true;
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
  clear(r);
  if (!locate_status(mem, chain, r)) return;
  // 5.2.6.1: the driver must not exceed size_max.
  MappedChain mapped = map_chain(mem, chain, limits.size_max, r.buffers);
  if (!mapped.error.empty()) return fail(r, Disposition::Invalid, mapped.error);
  mapped.writer.take_last_byte();  // r.status: not data
  Header header{};
  if (!mapped.reader.read_obj(header)) {
    return fail(r, Disposition::Invalid, "request header shorter than 16 bytes");
  }
  switch (header.type) {
    case kTypeIn:
    case kTypeOut: return parse_transfer(r, header, mapped, limits);
    case kTypeFlush:
      r.disposition = Disposition::ToDisk;
      r.type = RequestType::Flush;
      r.used_len = 1;
      return;
    case kTypeGetId: return parse_get_id(r, mapped.writer);
    case kTypeDiscard: return parse_segment_request(r, mapped.reader, limits, true);
    case kTypeWriteZeroes: return parse_segment_request(r, mapped.reader, limits, false);
    default:
      // Every other type (GET_LIFETIME, SECURE_ERASE, the zoned ones, and
      // values the spec does not define) is refused here, before the disk.
      return fail(r, Disposition::Unsupported, "unknown request type");
  }
}

}  // namespace minivmm::virtio::blk
