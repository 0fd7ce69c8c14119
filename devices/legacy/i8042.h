// The reset line of the PC keyboard controller: Linux's `reboot=k` writes
// command 0xfe (pulse output port bit 0, CPU reset) to port 0x64. No
// keyboard is emulated; status reads say "no data, input buffer empty" so
// the reboot path never waits.
#pragma once

#include <functional>

#include "common/pio_device.h"

namespace minivmm {

class I8042 : public PioDevice {
 public:
  static constexpr uint16_t kDataPort = 0x60;
  static constexpr uint16_t kSize = 5;  // 0x60..0x64
  using OnReset = std::function<void()>;

  explicit I8042(OnReset on_reset) : on_reset_(std::move(on_reset)) {}
  void pio_read(uint16_t offset, uint8_t* data, uint32_t len) override;
  void pio_write(uint16_t offset, const uint8_t* data, uint32_t len) override;

 private:
  OnReset on_reset_;
};

}  // namespace minivmm
