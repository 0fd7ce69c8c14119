#include "devices/serial/uart8250.h"

namespace minivmm {
namespace {

// Register offsets and bits (PC16550D).
constexpr uint16_t kRbrThr = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6,
                   kScr = 7;
constexpr uint8_t kIerRdi = 0x01, kIerThri = 0x02;
constexpr uint8_t kIirNone = 0x01, kIirThri = 0x02, kIirRdi = 0x04, kIirFifoBits = 0xc0;
constexpr uint8_t kFcrEnable = 0x01, kFcrClearRx = 0x02;
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kMcrDtr = 0x01, kMcrRts = 0x02, kMcrOut1 = 0x04, kMcrOut2 = 0x08, kMcrLoop = 0x10;
constexpr uint8_t kLsrDr = 0x01, kLsrThre = 0x20, kLsrTemt = 0x40;
constexpr uint8_t kMsrCts = 0x10, kMsrDsr = 0x20, kMsrRi = 0x40, kMsrDcd = 0x80;

}  // namespace

Uart8250::Uart8250(IrqLine irq, Output out) : irq_(std::move(irq)), out_(std::move(out)) {}

size_t Uart8250::receive(const uint8_t* data, size_t len) {
  std::lock_guard lock(mu_);
  size_t n = 0;
  while (n < len && rx_.size() < kRxLimit) rx_.push_back(data[n++]);
  update_irq();
  return n;
}

void Uart8250::pio_read(uint16_t offset, uint8_t* data, uint32_t len) {
  std::lock_guard lock(mu_);
  // Registers are byte-wide; a wider access reads the first register and
  // zero-fills (the bus does not wrap into the next register).
  for (uint32_t i = 0; i < len; ++i) data[i] = 0;
  if (len >= 1) data[0] = read_register(offset);
  update_irq();
}

void Uart8250::pio_write(uint16_t offset, const uint8_t* data, uint32_t len) {
  std::lock_guard lock(mu_);
  if (len >= 1) write_register(offset, data[0]);
  update_irq();
}

uint8_t Uart8250::modem_status() const {
  if (mcr_ & kMcrLoop) {
    // Loopback wiring: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD. Linux's
    // autoconfig checks exactly this.
    uint8_t msr = 0;
    if (mcr_ & kMcrRts) msr |= kMsrCts;
    if (mcr_ & kMcrDtr) msr |= kMsrDsr;
    if (mcr_ & kMcrOut1) msr |= kMsrRi;
    if (mcr_ & kMcrOut2) msr |= kMsrDcd;
    return msr;
  }
  return kMsrDcd | kMsrDsr | kMsrCts;
}

uint8_t Uart8250::interrupt_id() const {
  const uint8_t fifo = (fcr_ & kFcrEnable) ? kIirFifoBits : 0;
  if ((ier_ & kIerRdi) && !rx_.empty()) return fifo | kIirRdi;
  if ((ier_ & kIerThri) && thr_empty_irq_) return fifo | kIirThri;
  return fifo | kIirNone;
}

uint8_t Uart8250::read_register(uint16_t offset) {
  const bool dlab = lcr_ & kLcrDlab;
  switch (offset) {
    case kRbrThr: {
      if (dlab) return dll_;
      if (rx_.empty()) return 0;
      const uint8_t b = rx_.front();
      rx_.pop_front();
      return b;
    }
    case kIer: return dlab ? dlm_ : ier_;
    case kIirFcr: {
      const uint8_t iir = interrupt_id();
      // Reading IIR while it reports THRE acknowledges that interrupt.
      if ((iir & 0x0f) == kIirThri) thr_empty_irq_ = false;
      return iir;
    }
    case kLcr: return lcr_;
    case kMcr: return mcr_;
    case kLsr: return static_cast<uint8_t>(kLsrThre | kLsrTemt | (rx_.empty() ? 0 : kLsrDr));
    case kMsr: return modem_status();
    case kScr: return scr_;
    default: return 0xff;
  }
}

void Uart8250::write_register(uint16_t offset, uint8_t value) {
  const bool dlab = lcr_ & kLcrDlab;
  switch (offset) {
    case kRbrThr:
      if (dlab) {
        dll_ = value;
      } else {
        // In loopback the byte comes back as received data instead of going out.
        if (mcr_ & kMcrLoop) {
          if (rx_.size() < kRxLimit) rx_.push_back(value);
        } else {
          out_(value);
        }
        thr_empty_irq_ = true;  // transmission is instant
      }
      break;
    case kIer:
      if (dlab) {
        dlm_ = value;
      } else {
        // Enabling THRI with an empty THR raises the interrupt at once.
        if ((value & kIerThri) && !(ier_ & kIerThri)) thr_empty_irq_ = true;
        ier_ = value & 0x0f;
      }
      break;
    case kIirFcr:
      fcr_ = value;
      if (value & kFcrClearRx) rx_.clear();
      break;
    case kLcr: lcr_ = value; break;
    case kMcr: mcr_ = value & 0x1f; break;
    case kScr: scr_ = value; break;
    default: break;  // LSR and MSR are read-only
  }
}

void Uart8250::update_irq() {
  const bool level = (interrupt_id() & kIirNone) == 0;
  if (level != irq_level_) {
    irq_level_ = level;
    irq_(level);
  }
}

}  // namespace minivmm
