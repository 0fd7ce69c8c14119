#include "devices/serial/uart8250.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace minivmm {
namespace {

class Uart8250Test : public ::testing::Test {
 protected:
  uint8_t read(uint16_t reg) {
    uint8_t v = 0;
    uart.pio_read(reg, &v, 1);
    return v;
  }
  void write(uint16_t reg, uint8_t v) { uart.pio_write(reg, &v, 1); }

  std::vector<bool> irq_edges;
  std::string out;
  Uart8250 uart{[this](bool level) { irq_edges.push_back(level); },
                [this](uint8_t b) { out.push_back(static_cast<char>(b)); }};
};

TEST_F(Uart8250Test, TransmitsBytesAndReportsTransmitterEmpty) {
  for (char c : std::string("hi\n")) write(0, static_cast<uint8_t>(c));
  EXPECT_EQ(out, "hi\n");
  EXPECT_EQ(read(5) & 0x60, 0x60);  // THRE | TEMT
  EXPECT_TRUE(irq_edges.empty());   // no interrupts enabled
}

TEST_F(Uart8250Test, ScratchAndDivisorLatch) {
  write(7, 0x5a);
  EXPECT_EQ(read(7), 0x5a);
  write(3, 0x80);  // DLAB
  write(0, 0x01);
  write(1, 0x02);
  EXPECT_EQ(read(0), 0x01);
  EXPECT_EQ(read(1), 0x02);
  write(3, 0x03);
  EXPECT_EQ(read(1), 0x00);  // IER again
  EXPECT_TRUE(out.empty());  // divisor writes are not output
}

TEST_F(Uart8250Test, LoopbackModeMirrorsModemControl) {
  // Linux's autoconfig: MCR = LOOP | OUT2 | RTS must read back MSR & 0xf0 == 0x90.
  write(4, 0x1a);
  EXPECT_EQ(read(6) & 0xf0, 0x90);
  write(0, 'x');  // loops back as received data
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(read(5) & 0x01, 0x01);
  EXPECT_EQ(read(0), 'x');
  write(4, 0x00);
  EXPECT_EQ(read(6) & 0xf0, 0xb0);  // DCD | DSR | CTS when not looped
}

TEST_F(Uart8250Test, ReceiveRaisesInterruptUntilDrained) {
  write(1, 0x01);  // IER: received data available
  EXPECT_TRUE(irq_edges.empty());
  EXPECT_EQ(uart.receive(reinterpret_cast<const uint8_t*>("ab"), 2), 2u);
  ASSERT_EQ(irq_edges, std::vector<bool>{true});
  EXPECT_EQ(read(2) & 0x0f, 0x04);  // IIR: RDI
  EXPECT_EQ(read(0), 'a');
  EXPECT_EQ(irq_edges.size(), 1u);  // still pending: 'b' left
  EXPECT_EQ(read(0), 'b');
  EXPECT_EQ(irq_edges, (std::vector<bool>{true, false}));
  EXPECT_EQ(read(2) & 0x01, 0x01);  // no interrupt pending
  EXPECT_EQ(read(5) & 0x01, 0x00);  // no data
}

TEST_F(Uart8250Test, TransmitterEmptyInterruptIsAcknowledgedByIirRead) {
  write(1, 0x02);  // IER: THRI, THR is empty -> interrupt at once
  ASSERT_EQ(irq_edges, std::vector<bool>{true});
  EXPECT_EQ(read(2) & 0x0f, 0x02);
  EXPECT_EQ(irq_edges, (std::vector<bool>{true, false}));
  write(0, 'z');  // sent at once -> THRE interrupt again
  EXPECT_EQ(irq_edges, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(out, "z");
}

TEST_F(Uart8250Test, ReceiveBufferIsBounded) {
  std::vector<uint8_t> big(Uart8250::kRxLimit + 10, 'q');
  EXPECT_EQ(uart.receive(big.data(), big.size()), Uart8250::kRxLimit);
  write(2, 0x03);  // FCR: enable FIFO + clear RX
  EXPECT_EQ(read(5) & 0x01, 0x00);
  EXPECT_EQ(read(2) & 0xc0, 0xc0);  // FIFO enabled bits in IIR
}

}  // namespace
}  // namespace minivmm
