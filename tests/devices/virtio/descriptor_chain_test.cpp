#include "devices/virtio/descriptor_chain.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "devices/virtio/virtio_constants.h"

namespace minivmm::virtio {
namespace {

constexpr uint64_t kBase = 0x1000;
constexpr uint16_t kQueueSize = 8;
constexpr uint64_t kTable = kBase;             // 8 descriptors
constexpr uint64_t kIndirect = kBase + 0x400;  // indirect tables here

class DescriptorChainTest : public ::testing::Test {
 protected:
  std::vector<uint8_t> ram = std::vector<uint8_t>(0x2000, 0);
  GuestMemory mem{ram.data(), {.base = kBase, .size = ram.size()}};

  void put(uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    uint8_t* d = ram.data() + (table - kBase) + 16ull * i;
    std::memcpy(d, &addr, 8);
    std::memcpy(d + 8, &len, 4);
    std::memcpy(d + 12, &flags, 2);
    std::memcpy(d + 14, &next, 2);
  }
  DescriptorChain walk(uint16_t head, bool indirect = true) {
    return read_descriptor_chain(mem, kTable, kQueueSize, head, indirect);
  }
};

TEST_F(DescriptorChainTest, DirectChainKeepsOrderAndDirections) {
  put(kTable, 2, 0x1800, 16, kDescFlagNext, 5);
  put(kTable, 5, 0x1900, 512, kDescFlagNext | kDescFlagWrite, 1);
  put(kTable, 1, 0x1b00, 1, kDescFlagWrite, 0);
  auto c = walk(2);
  ASSERT_EQ(c.error, ChainError::None);
  EXPECT_EQ(c.head, 2);
  ASSERT_EQ(c.descriptors.size(), 3u);
  EXPECT_EQ(c.descriptors[0].addr, 0x1800u);
  EXPECT_FALSE(c.descriptors[0].device_writable);
  EXPECT_EQ(c.descriptors[1].len, 512u);
  EXPECT_TRUE(c.descriptors[1].device_writable);
  EXPECT_TRUE(c.descriptors[2].device_writable);
}

TEST_F(DescriptorChainTest, LoopIsTooLong) {
  put(kTable, 0, 0x1800, 16, kDescFlagNext, 1);
  put(kTable, 1, 0x1800, 16, kDescFlagNext, 0);
  EXPECT_EQ(walk(0).error, ChainError::TooLong);
}

TEST_F(DescriptorChainTest, SelfLoopIsTooLong) {
  put(kTable, 3, 0x1800, 16, kDescFlagNext, 3);
  EXPECT_EQ(walk(3).error, ChainError::TooLong);
}

TEST_F(DescriptorChainTest, NextBeyondTable) {
  put(kTable, 0, 0x1800, 16, kDescFlagNext, kQueueSize);
  EXPECT_EQ(walk(0).error, ChainError::NextOutOfRange);
}

TEST_F(DescriptorChainTest, TableOutsideRam) {
  auto c = read_descriptor_chain(mem, kBase + ram.size() - 8, kQueueSize, 0, true);
  EXPECT_EQ(c.error, ChainError::TableOutOfRange);
}

TEST_F(DescriptorChainTest, IndirectTableIsWalked) {
  put(kIndirect, 0, 0x1800, 16, kDescFlagNext, 1);
  put(kIndirect, 1, 0x1900, 512, kDescFlagNext | kDescFlagWrite, 2);
  put(kIndirect, 2, 0x1b00, 1, kDescFlagWrite, 0);
  // The WRITE flag on the descriptor naming the table is ignored (2.7.5.3.2).
  put(kTable, 4, kIndirect, 48, kDescFlagIndirect | kDescFlagWrite, 0);
  auto c = walk(4);
  ASSERT_EQ(c.error, ChainError::None);
  ASSERT_EQ(c.descriptors.size(), 3u);
  EXPECT_FALSE(c.descriptors[0].device_writable);
  EXPECT_EQ(c.descriptors[1].addr, 0x1900u);
  EXPECT_TRUE(c.descriptors[2].device_writable);
}

TEST_F(DescriptorChainTest, DirectDescriptorsThenIndirectTable) {
  put(kIndirect, 0, 0x1b00, 1, kDescFlagWrite, 0);
  put(kTable, 0, 0x1800, 16, kDescFlagNext, 1);
  put(kTable, 1, kIndirect, 16, kDescFlagIndirect, 0);
  auto c = walk(0);
  ASSERT_EQ(c.error, ChainError::None);
  ASSERT_EQ(c.descriptors.size(), 2u);
  EXPECT_TRUE(c.descriptors[1].device_writable);
}

TEST_F(DescriptorChainTest, IndirectRejectedWhenNotNegotiated) {
  put(kTable, 0, kIndirect, 16, kDescFlagIndirect, 0);
  EXPECT_EQ(walk(0, false).error, ChainError::IndirectNotNegotiated);
}

TEST_F(DescriptorChainTest, IndirectWithNextRejected) {
  put(kTable, 0, kIndirect, 16, kDescFlagIndirect | kDescFlagNext, 1);
  EXPECT_EQ(walk(0).error, ChainError::IndirectWithNext);
}

TEST_F(DescriptorChainTest, IndirectBadLengthRejected) {
  put(kTable, 0, kIndirect, 24, kDescFlagIndirect, 0);
  EXPECT_EQ(walk(0).error, ChainError::IndirectBadLength);
  put(kTable, 0, kIndirect, 0, kDescFlagIndirect, 0);
  EXPECT_EQ(walk(0).error, ChainError::IndirectBadLength);
}

TEST_F(DescriptorChainTest, IndirectTableOutsideRamRejected) {
  put(kTable, 0, kBase + ram.size() - 16, 32, kDescFlagIndirect, 0);
  EXPECT_EQ(walk(0).error, ChainError::TableOutOfRange);
}

TEST_F(DescriptorChainTest, NestedIndirectRejected) {
  put(kIndirect, 0, kIndirect + 0x100, 16, kDescFlagIndirect, 0);
  put(kTable, 0, kIndirect, 16, kDescFlagIndirect, 0);
  EXPECT_EQ(walk(0).error, ChainError::IndirectNested);
}

TEST_F(DescriptorChainTest, LoopInsideIndirectTable) {
  put(kIndirect, 0, 0x1800, 16, kDescFlagNext, 1);
  put(kIndirect, 1, 0x1800, 16, kDescFlagNext, 0);
  put(kTable, 0, kIndirect, 32, kDescFlagIndirect, 0);
  EXPECT_EQ(walk(0).error, ChainError::TooLong);
}

TEST_F(DescriptorChainTest, IndirectNextBeyondTable) {
  put(kIndirect, 0, 0x1800, 16, kDescFlagNext, 2);  // table has 2 entries
  put(kTable, 0, kIndirect, 32, kDescFlagIndirect, 0);
  EXPECT_EQ(walk(0).error, ChainError::NextOutOfRange);
}

TEST_F(DescriptorChainTest, IndirectTableLongerThanQueueRejected) {
  // A loop-free table with more entries than the queue: still bounded.
  for (uint16_t i = 0; i < 2 * kQueueSize; ++i) {
    put(kIndirect, i, 0x1800, 16, kDescFlagNext, static_cast<uint16_t>(i + 1));
  }
  put(kIndirect, 2 * kQueueSize - 1, 0x1800, 16, 0, 0);
  put(kTable, 0, kIndirect, 16 * 2 * kQueueSize, kDescFlagIndirect, 0);
  EXPECT_EQ(walk(0).error, ChainError::TooLong);
}

}  // namespace
}  // namespace minivmm::virtio
