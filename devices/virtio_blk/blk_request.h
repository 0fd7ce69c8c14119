// Turning one descriptor chain into a virtio-blk request (virtio 1.x 5.2.6),
// without trusting anything the guest wrote. Framing-agnostic (2.6.4): the
// header is the first 16 device-readable bytes and the status byte the last
// device-writable byte, however the driver split them into descriptors.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/guest_memory.h"
#include "devices/virtio/descriptor_chain.h"
#include "storage/request_checks.h"
#include "storage/request_type.h"

namespace minivmm::virtio::blk {

// What the parser needs to know about the disk and the negotiated features.
struct RequestLimits {
  // Size, logical block size, read-only: checked by storage::check_range(),
  // the rules the Disk itself enforces.
  storage::ImageLimits image;
  bool discard = false;       // VIRTIO_BLK_F_DISCARD negotiated
  bool write_zeroes = false;  // VIRTIO_BLK_F_WRITE_ZEROES negotiated
  uint32_t max_discard_sectors = 0;
  uint32_t max_write_zeroes_sectors = 0;
  // The advertised size_max (5.2.4): no buffer of a request may be larger;
  // 0 = no limit.
  uint32_t size_max = 0;
};

struct BlkRequest {
  BlkRequest() = default;
  // Move only: `data` points into `buffers`, whose heap array a move keeps.
  BlkRequest(const BlkRequest&) = delete;
  BlkRequest& operator=(const BlkRequest&) = delete;
  BlkRequest(BlkRequest&&) = default;
  BlkRequest& operator=(BlkRequest&&) = default;

  // What the device does with the chain. Only ToDisk requests reach the
  // storage::Disk, as `type`; the device answers every other one itself.
  enum class Disposition {
    ToDisk,
    GetId,        // answered from the device's serial
    Unsupported,  // answer VIRTIO_BLK_S_UNSUPP (an unknown type among them)
    Invalid,      // answer VIRTIO_BLK_S_IOERR
    NoStatus,     // no writable status byte can be located: the device must
                  // ask for a reset, never return the chain
  };
  Disposition disposition = Disposition::NoStatus;
  // ToDisk: the operation, mapped once from the virtio header type.
  storage::RequestType type = storage::RequestType::Read;
  uint8_t* status = nullptr;  // host address of the status byte (not for NoStatus)
  uint64_t offset = 0;        // bytes into the disk
  uint64_t length = 0;        // bytes (Read/Write: sum of `data`)
  bool unmap = false;         // WriteZeroes: may deallocate
  // Read: the device-writable buffers; Write: the readable ones after the
  // header; GetId: the writable bytes the ID goes into. A view into
  // `buffers`, handed to the disk as it is (DiskRequest::iov).
  std::span<const iovec> data;
  // Bytes the device writes into the chain on success, status byte included
  // (the used-ring len, 2.7.8).
  uint32_t used_len = 0;
  std::string_view why;  // for Invalid / Unsupported / NoStatus: the reason, for the log
  // Every buffer of the chain, mapped once into guest RAM (map_chain);
  // reused, so parsing allocates nothing once it has grown.
  std::vector<iovec> buffers;

  bool goes_to_disk_as(storage::RequestType t) const {
    return disposition == Disposition::ToDisk && type == t;
  }
};

BlkRequest parse_blk_request(const GuestMemory& mem, const DescriptorChain& chain,
                             const RequestLimits& limits);
// The same into `out`, reusing out.buffers' capacity: the device parses
// each chain into the request slot of its head and allocates nothing once
// the slots have grown.
void parse_blk_request_into(const GuestMemory& mem, const DescriptorChain& chain,
                            const RequestLimits& limits, BlkRequest& out);

}  // namespace minivmm::virtio::blk
