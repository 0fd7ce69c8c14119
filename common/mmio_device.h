// A device on the guest's MMIO bus. Offsets are relative to the device's base.
#pragma once

#include <cstdint>

namespace minivmm {

class MmioDevice {
 public:
  virtual ~MmioDevice() = default;
  virtual void mmio_read(uint64_t offset, uint8_t* data, uint32_t len) = 0;
  virtual void mmio_write(uint64_t offset, const uint8_t* data, uint32_t len) = 0;
};

}  // namespace minivmm
