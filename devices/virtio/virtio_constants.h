// Constants the virtio 1.x specification defines for every device: status
// bits (2.1), reserved feature bits (6), split-ring flags (2.7).
#pragma once

#include <cstdint>

namespace minivmm::virtio {

// Device status field (2.1).
inline constexpr uint32_t kStatusAcknowledge = 1;
inline constexpr uint32_t kStatusDriver = 2;
inline constexpr uint32_t kStatusDriverOk = 4;
inline constexpr uint32_t kStatusFeaturesOk = 8;
inline constexpr uint32_t kStatusDeviceNeedsReset = 64;
inline constexpr uint32_t kStatusFailed = 128;

// Reserved feature bits (6).
inline constexpr unsigned kFeatureRingIndirectDesc = 28;
inline constexpr unsigned kFeatureRingEventIdx = 29;
inline constexpr unsigned kFeatureVersion1 = 32;

constexpr uint64_t feature_bit(unsigned bit) { return uint64_t{1} << bit; }

// Split virtqueue descriptor flags (2.7.5).
inline constexpr uint16_t kDescFlagNext = 1;
inline constexpr uint16_t kDescFlagWrite = 2;
inline constexpr uint16_t kDescFlagIndirect = 4;

// Available ring flags (2.7.6) and used ring flags (2.7.8).
inline constexpr uint16_t kAvailFlagNoInterrupt = 1;
inline constexpr uint16_t kUsedFlagNoNotify = 1;

// Split queues must have a power-of-two size of at most 32768 (2.7).
inline constexpr uint16_t kMaxQueueSize = 32768;

// InterruptStatus bits (4.2.2).
inline constexpr uint32_t kInterruptUsedBuffer = 1;
inline constexpr uint32_t kInterruptConfigChange = 2;

}  // namespace minivmm::virtio
