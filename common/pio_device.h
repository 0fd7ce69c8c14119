// A device on the guest's x86 I/O-port bus. Offsets are relative to the
// device's first port.
#pragma once

#include <cstdint>

namespace minivmm {

class PioDevice {
 public:
  virtual ~PioDevice() = default;
  virtual void pio_read(uint16_t offset, uint8_t* data, uint32_t len) = 0;
  virtual void pio_write(uint16_t offset, const uint8_t* data, uint32_t len) = 0;
};

}  // namespace minivmm
