// Constants of the virtio block device (virtio 1.x 5.2).
#pragma once

#include <cstdint>

namespace minivmm::virtio::blk {

inline constexpr uint32_t kDeviceId = 2;      // 5.2.1
inline constexpr uint64_t kSectorSize = 512;  // capacity and sector fields count these

// Feature bits (5.2.3).
inline constexpr unsigned kFeatureSizeMax = 1;
inline constexpr unsigned kFeatureSegMax = 2;
inline constexpr unsigned kFeatureRo = 5;
inline constexpr unsigned kFeatureBlkSize = 6;
inline constexpr unsigned kFeatureFlush = 9;
inline constexpr unsigned kFeatureConfigWce = 11;
inline constexpr unsigned kFeatureMq = 12;
inline constexpr unsigned kFeatureDiscard = 13;
inline constexpr unsigned kFeatureWriteZeroes = 14;

// Request types (5.2.6).
inline constexpr uint32_t kTypeIn = 0;
inline constexpr uint32_t kTypeOut = 1;
inline constexpr uint32_t kTypeFlush = 4;
inline constexpr uint32_t kTypeGetId = 8;
inline constexpr uint32_t kTypeDiscard = 11;
inline constexpr uint32_t kTypeWriteZeroes = 13;

// Status byte values (5.2.6).
inline constexpr uint8_t kStatusOk = 0;
inline constexpr uint8_t kStatusIoErr = 1;
inline constexpr uint8_t kStatusUnsupp = 2;

// Request header: le32 type, le32 reserved, le64 sector (5.2.6).
inline constexpr uint32_t kRequestHeaderSize = 16;
// Discard / write zeroes segment: le64 sector, le32 num_sectors, le32 flags.
inline constexpr uint32_t kSegmentSize = 16;
inline constexpr uint32_t kSegmentFlagUnmap = 1;
// GET_ID answer: up to 20 bytes, not NUL-terminated when all are used.
inline constexpr uint32_t kIdBytes = 20;

}  // namespace minivmm::virtio::blk
