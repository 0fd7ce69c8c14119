// minivmm's exit device: a guest write of a 32-bit value V to I/O port 0x4f0
// ends the run, and minivmm exits with status V & 0xff. Guest test code (the
// agent in guest/agent/) reports its verdict through it.
#pragma once

#include <functional>

#include "common/pio_device.h"

namespace minivmm {

class ExitPort : public PioDevice {
 public:
  static constexpr uint16_t kPort = 0x4f0;
  static constexpr uint16_t kSize = 4;
  using OnExit = std::function<void(uint32_t value)>;

  explicit ExitPort(OnExit on_exit) : on_exit_(std::move(on_exit)) {}
  void pio_read(uint16_t offset, uint8_t* data, uint32_t len) override;
  void pio_write(uint16_t offset, const uint8_t* data, uint32_t len) override;

 private:
  OnExit on_exit_;
};

}  // namespace minivmm
