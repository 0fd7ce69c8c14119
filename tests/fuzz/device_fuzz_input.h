// The input language of the device fuzz target (virtio_blk_device_fuzz.cpp),
// shared with its seeds: a short header, then commands a hostile driver
// could issue, each an opcode byte and its operands (little-endian).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace minivmm::fuzz {

// Header: flags byte (bit 0 read-only disk, bit 4 two queues, bits 1-3 cache
// mode % 5), then a 64-bit mask ANDed with the offered features.
enum class DeviceOp : uint8_t {
  WriteRegister,    // u8 register index (offset = 4 * index), u32 value
  ReadRegister,     // u8 register index
  PokeMemory,       // u16 scratch offset, u8 length, bytes: guest memory changes
  WriteDescriptor,  // u8 queue, u8 index, u8 addr mode (0 scratch+u16, else u64), u32 len, u8
                    // flags, u8 next
  PublishHead,      // u8 queue, u8 head; then notify
  AddRequest,       // u8 queue, u8 type, u16 sector, u8 sectors, u8 framing; then notify
  HoldDisk,         // completions stay in flight
  ReleaseDisk,      // complete what is held
  WriteConfig,      // u8 offset, u8 value
  Settle,           // let the device loop catch up
  Reset,            // driver reset and re-initialisation
  ReadConfig,       // u8 offset: a 4-byte config-space read
  kCount,
};

// Builds inputs in this language (seeds, tests).
struct DeviceInputBuilder {
  std::vector<uint8_t> bytes;
  DeviceInputBuilder(uint8_t flags, uint64_t feature_mask) {
    bytes.push_back(flags);
    put(feature_mask);
  }
  template <typename T>
  DeviceInputBuilder& put(T v) {
    const size_t at = bytes.size();
    bytes.resize(at + sizeof(T));
    std::memcpy(bytes.data() + at, &v, sizeof(T));
    return *this;
  }
  DeviceInputBuilder& op(DeviceOp o) { return put(static_cast<uint8_t>(o)); }
};

}  // namespace minivmm::fuzz
