#include <gtest/gtest.h>

#include <optional>

#include "devices/legacy/exit_port.h"
#include "devices/legacy/i8042.h"

namespace minivmm {
namespace {

TEST(ExitPort, ReportsTheWrittenValue) {
  std::optional<uint32_t> got;
  ExitPort port([&](uint32_t v) { got = v; });
  const uint32_t v = 0x12345603;
  port.pio_write(0, reinterpret_cast<const uint8_t*>(&v), 4);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, 0x12345603u);
}

TEST(ExitPort, ByteWriteAndOffsetWrites) {
  std::optional<uint32_t> got;
  ExitPort port([&](uint32_t v) { got = v; });
  const uint8_t b = 7;
  port.pio_write(1, &b, 1);  // not the port itself
  EXPECT_FALSE(got);
  port.pio_write(0, &b, 1);
  EXPECT_EQ(got, 7u);
}

TEST(I8042, ResetCommandOnlyOnCommandPort) {
  int resets = 0;
  I8042 kbd([&] { ++resets; });
  const uint8_t reset = 0xfe, other = 0xad;
  kbd.pio_write(0, &reset, 1);  // data port: not a command
  kbd.pio_write(4, &other, 1);
  EXPECT_EQ(resets, 0);
  kbd.pio_write(4, &reset, 1);
  EXPECT_EQ(resets, 1);
  uint8_t status = 0xff;
  kbd.pio_read(4, &status, 1);
  EXPECT_EQ(status & 0x03, 0);  // no output data, input buffer empty
}

}  // namespace
}  // namespace minivmm
