// The virtio-blk device configuration space (virtio 1.x 5.2.4), as the
// little-endian bytes the driver reads at virtio-mmio offset 0x100.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace minivmm::virtio::blk {

static_assert(std::endian::native == std::endian::little,
              "config space is little-endian and copied as is");

#pragma pack(push, 1)
struct ConfigSpace {
  uint64_t capacity = 0;  // in 512-byte sectors
  uint32_t size_max = 0;
  uint32_t seg_max = 0;
  uint16_t geometry_cylinders = 0;
  uint8_t geometry_heads = 0;
  uint8_t geometry_sectors = 0;
  uint32_t blk_size = 0;
  uint8_t physical_block_exp = 0;
  uint8_t alignment_offset = 0;
  uint16_t min_io_size = 0;
  uint32_t opt_io_size = 0;
  uint8_t writeback = 0;
  uint8_t unused0 = 0;
  uint16_t num_queues = 0;
  uint32_t max_discard_sectors = 0;
  uint32_t max_discard_seg = 0;
  uint32_t discard_sector_alignment = 0;
  uint32_t max_write_zeroes_sectors = 0;
  uint32_t max_write_zeroes_seg = 0;
  uint8_t write_zeroes_may_unmap = 0;
  uint8_t unused1[3] = {0, 0, 0};
};
#pragma pack(pop)

static_assert(offsetof(ConfigSpace, blk_size) == 20);
static_assert(offsetof(ConfigSpace, writeback) == 32);
static_assert(offsetof(ConfigSpace, num_queues) == 34);
static_assert(offsetof(ConfigSpace, max_discard_sectors) == 36);
static_assert(offsetof(ConfigSpace, write_zeroes_may_unmap) == 56);
static_assert(sizeof(ConfigSpace) == 60);

inline constexpr uint64_t kWritebackOffset = offsetof(ConfigSpace, writeback);

}  // namespace minivmm::virtio::blk
