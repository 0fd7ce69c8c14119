#include "devices/legacy/i8042.h"

#include <cstring>

namespace minivmm {

namespace {
constexpr uint16_t kCommandOffset = 4;  // port 0x64
constexpr uint8_t kCmdResetCpu = 0xfe;
}  // namespace

void I8042::pio_read(uint16_t, uint8_t* data, uint32_t len) { std::memset(data, 0, len); }

void I8042::pio_write(uint16_t offset, const uint8_t* data, uint32_t len) {
  if (offset == kCommandOffset && len >= 1 && data[0] == kCmdResetCpu) on_reset_();
}

}  // namespace minivmm
