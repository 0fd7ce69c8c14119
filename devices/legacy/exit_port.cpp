#include "devices/legacy/exit_port.h"

#include <cstring>

namespace minivmm {

void ExitPort::pio_read(uint16_t, uint8_t* data, uint32_t len) { std::memset(data, 0, len); }

void ExitPort::pio_write(uint16_t offset, const uint8_t* data, uint32_t len) {
  // Only a write at the port itself counts; its width may be 1, 2 or 4.
  if (offset != 0) return;
  uint32_t value = 0;
  std::memcpy(&value, data, len < sizeof(value) ? len : sizeof(value));
  on_exit_(value);
}

}  // namespace minivmm
