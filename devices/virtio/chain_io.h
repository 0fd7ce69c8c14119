// Reading and writing the guest buffers of one descriptor chain (virtio 1.x
// 2.7.4, 2.6.4: a device must not assume any framing). map_chain()
// translates every buffer once into iovecs into guest RAM; a ChainReader
// walks the device-readable ones, a ChainWriter the device-writable ones.
// Both consume bytes from the front in place (the first iovec is trimmed),
// so what is left, rest(), is itself the iovec list a device hands on to
// its backend: one list, built once per chain, no copy of it.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/guest_memory.h"
#include "devices/virtio/descriptor_chain.h"

namespace minivmm::virtio {

// The front-consumed part both directions share.
class ChainBytes {
 public:
  ChainBytes() = default;
  explicit ChainBytes(std::span<iovec> buffers);
  // Bytes not consumed yet.
  uint64_t remaining() const { return remaining_; }
  // The bytes not consumed yet, as iovecs into guest RAM.
  std::span<iovec> rest() const { return buffers_.subspan(first_); }
  // Keeps only the next `len` bytes (the iovec at the cut is shortened,
  // later ones dropped); no-op when no more remain.
  void truncate(uint64_t len);

 protected:
  // Calls fn(host, n) over the next `len` bytes and consumes them; false
  // (nothing consumed) when fewer remain.
  template <typename Fn>
  bool consume(uint64_t len, Fn&& fn);
  std::span<iovec> buffers_;
  size_t first_ = 0;
  uint64_t remaining_ = 0;
};

class ChainReader : public ChainBytes {
 public:
  using ChainBytes::ChainBytes;
  bool read(void* out, uint64_t len);
  template <typename T>
  bool read_obj(T& obj) {
    static_assert(std::is_trivially_copyable_v<T>);
    return read(&obj, sizeof(obj));
  }
};

class ChainWriter : public ChainBytes {
 public:
  using ChainBytes::ChainBytes;
  bool write(const void* src, uint64_t len);
  // Takes the last writable byte off the end, where virtio-blk and others
  // put their status byte (5.2.6); nullptr when nothing is left.
  uint8_t* take_last_byte();
};

struct MappedChain {
  ChainReader reader;
  ChainWriter writer;
  // Empty when every buffer was mapped, else why the chain is malformed.
  std::string_view error;
};

// Translates the chain's buffers into `storage` (its capacity reused:
// nothing allocated once it has grown to the longest chain), readable ones
// first. Refused: a buffer outside guest RAM, a readable buffer after a
// writable one (2.7.4.2), a buffer longer than `max_buffer_len` (0: no
// limit). Empty buffers carry no bytes and are left out.
MappedChain map_chain(const GuestMemory& mem, const DescriptorChain& chain, uint32_t max_buffer_len,
                      std::vector<iovec>& storage);

}  // namespace minivmm::virtio
