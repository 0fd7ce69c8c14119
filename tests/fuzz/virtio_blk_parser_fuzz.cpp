// libFuzzer target: a split virtqueue plus the virtio-blk request parser
// over guest memory chosen entirely by the fuzzer. Input: one options byte,
// then the guest RAM image (descriptor table, available ring, buffers).
// Whatever the bytes, every buffer the parser hands out must lie inside
// guest RAM, and nothing may hang or touch memory outside it (ASan checks).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/guest_memory.h"
#include "devices/virtio/split_queue.h"
#include "devices/virtio_blk/blk_request.h"

namespace {

using minivmm::GuestMemory;
using minivmm::virtio::QueueLayout;
using minivmm::virtio::SplitQueue;
using minivmm::virtio::blk::BlkRequest;
using minivmm::virtio::blk::parse_blk_request;
using minivmm::virtio::blk::RequestLimits;

constexpr uint64_t kGuestBase = 0x80000000;
constexpr size_t kGuestSize = 64 << 10;
constexpr uint16_t kQueueSize = 16;
// Fixed ring placement; the fuzzer controls their contents.
constexpr uint64_t kDesc = kGuestBase;           // 16 * 16 bytes
constexpr uint64_t kAvail = kGuestBase + 0x100;  // 6 + 2 * 16 bytes
constexpr uint64_t kUsed = kGuestBase + 0x200;   // 6 + 8 * 16 bytes

bool inside(const std::vector<uint8_t>& ram, const void* p, size_t len) {
  const auto* b = static_cast<const uint8_t*>(p);
  return b >= ram.data() && len <= ram.size() &&
         b - ram.data() <= static_cast<ptrdiff_t>(ram.size() - len);
}

void check(bool ok) {
  if (!ok) std::abort();  // a finding: the parser let a buffer escape guest RAM
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t options = data[0];
  std::vector<uint8_t> ram(kGuestSize, 0);
  std::memcpy(ram.data(), data + 1, std::min(size - 1, ram.size()));
  const GuestMemory mem(ram.data(), {.base = kGuestBase, .size = ram.size()});

  SplitQueue queue(mem, QueueLayout{kQueueSize, kDesc, kAvail, kUsed}, options & 1, options & 2);
  const RequestLimits limits{
      .image = {.size_bytes = (options & 4) ? uint64_t{0} : uint64_t{2048} * 512,
                .block_size = (options & 64) ? 4096u : 512u,
                .read_only = (options & 8) != 0},
      .discard = (options & 16) != 0,
      .write_zeroes = (options & 32) != 0,
      .max_discard_sectors = 64,
      .max_write_zeroes_sectors = 64,
      .size_max = 4096,
  };
  // A queue holds at most kQueueSize chains; pop a few rounds' worth.
  for (int i = 0; i < 4 * kQueueSize; ++i) {
    auto chain = queue.pop();
    if (!chain) break;
    BlkRequest r = parse_blk_request(mem, *chain, limits);
    if (r.disposition == BlkRequest::Disposition::NoStatus) {
      // The device stops the queue (DEVICE_NEEDS_RESET); it never returns
      // such a chain used.
      queue.mark_broken(std::string(r.why));
      continue;
    }
    check(r.status && inside(ram, r.status, 1));
    uint64_t total = 0;
    for (const iovec& v : r.data) {
      check(inside(ram, v.iov_base, v.iov_len));
      check(v.iov_len <= limits.size_max);
      total += v.iov_len;
      // Touch every byte the way the disk would (ASan sees any escape).
      if (r.goes_to_disk_as(minivmm::storage::RequestType::Read)) {
        std::memset(v.iov_base, 0xa5, v.iov_len);
      } else {
        volatile uint8_t sink = 0;
        for (size_t j = 0; j < v.iov_len; ++j) sink = sink + static_cast<uint8_t*>(v.iov_base)[j];
      }
    }
    if (r.goes_to_disk_as(minivmm::storage::RequestType::Read) ||
        r.goes_to_disk_as(minivmm::storage::RequestType::Write)) {
      check(total == r.length);
    }
    if (r.disposition == BlkRequest::Disposition::ToDisk &&
        r.type != minivmm::storage::RequestType::Flush) {
      // Only requests the Disk itself would accept reach it.
      check(r.offset % limits.image.block_size == 0 && r.length % limits.image.block_size == 0);
      check(r.offset <= limits.image.size_bytes && r.length <= limits.image.size_bytes - r.offset);
      check(!limits.image.read_only || r.type == minivmm::storage::RequestType::Read);
    }
    *r.status = 0;
    queue.push_used(chain->head, r.used_len);
  }
  queue.needs_interrupt();
  return 0;
}
