// A 16550A-compatible UART (the PC's COM1 at 0x3f8, IRQ 4): enough of the
// 8250 register set for Linux's 8250 driver to detect it, print through it
// by polling (early console) and run an interactive tty on interrupts.
// Register reference: the PC16550D datasheet.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "common/pio_device.h"

namespace minivmm {

class Uart8250 : public PioDevice {
 public:
  using IrqLine = std::function<void(bool level)>;
  using Output = std::function<void(uint8_t byte)>;

  static constexpr uint16_t kCom1Port = 0x3f8;
  static constexpr uint32_t kCom1Irq = 4;
  static constexpr size_t kRxLimit = size_t{64} * 1024;

  Uart8250(IrqLine irq, Output out);

  void pio_read(uint16_t offset, uint8_t* data, uint32_t len) override;
  void pio_write(uint16_t offset, const uint8_t* data, uint32_t len) override;

  // Bytes typed on the host side; returns how many were accepted (the rest
  // must be offered again later: the receive buffer is bounded).
  size_t receive(const uint8_t* data, size_t len);

 private:
  uint8_t read_register(uint16_t offset);
  void write_register(uint16_t offset, uint8_t value);
  uint8_t interrupt_id() const;
  uint8_t modem_status() const;
  void update_irq();

  IrqLine irq_;
  Output out_;
  std::mutex mu_;
  std::deque<uint8_t> rx_;
  uint8_t ier_ = 0, lcr_ = 0, mcr_ = 0, scr_ = 0, fcr_ = 0;
  uint8_t dll_ = 0x0c, dlm_ = 0;  // 9600 baud
  bool thr_empty_irq_ = false;    // THRE interrupt pending (cleared by IIR read)
  bool irq_level_ = false;
};

}  // namespace minivmm
