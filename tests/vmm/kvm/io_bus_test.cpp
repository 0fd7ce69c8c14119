#include "vmm/kvm/io_bus.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/error.h"

namespace minivmm {
namespace {

struct RecordingDevice : PioDevice, MmioDevice {
  std::vector<std::pair<uint64_t, uint32_t>> writes;
  void pio_read(uint16_t off, uint8_t* d, uint32_t len) override { fill(off, d, len); }
  void pio_write(uint16_t off, const uint8_t*, uint32_t len) override {
    writes.push_back({off, len});
  }
  void mmio_read(uint64_t off, uint8_t* d, uint32_t len) override { fill(off, d, len); }
  void mmio_write(uint64_t off, const uint8_t*, uint32_t len) override {
    writes.push_back({off, len});
  }
  static void fill(uint64_t off, uint8_t* d, uint32_t len) {
    for (uint32_t i = 0; i < len; ++i) d[i] = static_cast<uint8_t>(off + i);
  }
};

TEST(IoBus, DispatchesWithOffsetsRelativeToBase) {
  IoBus bus;
  RecordingDevice dev;
  bus.add_pio(0x3f8, 8, &dev);
  bus.add_mmio(0xd0000000, 0x1000, &dev);
  uint8_t b = 0;
  bus.pio_read(0x3fd, &b, 1);
  EXPECT_EQ(b, 5);
  bus.mmio_write(0xd0000050, &b, 4);
  ASSERT_EQ(dev.writes.size(), 1u);
  EXPECT_EQ(dev.writes[0], (std::pair<uint64_t, uint32_t>{0x50, 4}));
}

TEST(IoBus, UnclaimedAccessesAreHarmless) {
  IoBus bus;
  uint32_t v = 0;
  bus.pio_read(0x80, reinterpret_cast<uint8_t*>(&v), 4);
  EXPECT_EQ(v, 0xffffffffu);
  v = 0x1234;
  bus.mmio_read(0xfeedf000, reinterpret_cast<uint8_t*>(&v), 4);
  EXPECT_EQ(v, 0u);
  bus.pio_write(0x80, reinterpret_cast<uint8_t*>(&v), 1);  // dropped, no crash
}

TEST(IoBus, OverlappingRangesAreRejected) {
  IoBus bus;
  RecordingDevice a, b;
  bus.add_pio(0x60, 5, &a);
  EXPECT_THROW(bus.add_pio(0x64, 1, &b), Error);
  bus.add_mmio(0xd0000000, 0x1000, &a);
  EXPECT_THROW(bus.add_mmio(0xd0000fff, 0x1000, &b), Error);
  bus.add_mmio(0xd0001000, 0x1000, &b);  // adjacent is fine
}

}  // namespace
}  // namespace minivmm
