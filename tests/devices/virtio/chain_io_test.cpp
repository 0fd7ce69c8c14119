#include "devices/virtio/chain_io.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace minivmm::virtio {
namespace {

constexpr uint64_t kBase = 0x100000;

class ChainIoTest : public ::testing::Test {
 protected:
  std::vector<uint8_t> ram = std::vector<uint8_t>(0x10000, 0);
  GuestMemory mem{ram.data(), {.base = kBase, .size = ram.size()}};
  std::vector<iovec> storage;

  MappedChain map(std::vector<Descriptor> d, uint32_t max_buffer_len = 0) {
    chain.descriptors = std::move(d);
    return map_chain(mem, chain, max_buffer_len, storage);
  }
  uint8_t* host(uint64_t gpa) { return ram.data() + (gpa - kBase); }

 private:
  DescriptorChain chain;
};

TEST_F(ChainIoTest, HeaderSplitAcrossDescriptorsReadsAsOneValue) {
  const uint64_t value = 0x1122334455667788;
  std::memcpy(host(kBase + 0x100), &value, 3);
  std::memcpy(host(kBase + 0x200), reinterpret_cast<const uint8_t*>(&value) + 3, 5);
  auto m = map({{kBase + 0x100, 3, false}, {kBase + 0x200, 5 + 100, false}});
  ASSERT_TRUE(m.error.empty());
  uint64_t read = 0;
  ASSERT_TRUE(m.reader.read_obj(read));
  EXPECT_EQ(read, value);
  // What is left is the rest of the second buffer: one trimmed iovec.
  ASSERT_EQ(m.reader.rest().size(), 1u);
  EXPECT_EQ(m.reader.rest()[0].iov_base, host(kBase + 0x205));
  EXPECT_EQ(m.reader.rest()[0].iov_len, 100u);
  EXPECT_EQ(m.reader.remaining(), 100u);
}

TEST_F(ChainIoTest, ShortChainRefusesTheReadAndConsumesNothing) {
  auto m = map({{kBase, 8, false}, {kBase + 0x100, 4, false}});
  uint8_t header[16];
  EXPECT_FALSE(m.reader.read(header, sizeof(header)));
  EXPECT_EQ(m.reader.remaining(), 12u);
  EXPECT_EQ(m.reader.rest().size(), 2u);
}

TEST_F(ChainIoTest, StatusIsTheLastWritableByteAndLeavesTheData) {
  auto m = map({{kBase, 16, false}, {kBase + 0x1000, 512, true}, {kBase + 0x2000, 10, true}});
  ASSERT_TRUE(m.error.empty());
  EXPECT_EQ(m.writer.take_last_byte(), host(kBase + 0x2000 + 9));
  EXPECT_EQ(m.writer.remaining(), 512u + 9);
  ASSERT_EQ(m.writer.rest().size(), 2u);
  EXPECT_EQ(m.writer.rest()[1].iov_len, 9u);
}

TEST_F(ChainIoTest, OneByteStatusBufferIsDroppedFromTheData) {
  auto m = map({{kBase, 16, false}, {kBase + 0x1000, 512, true}, {kBase + 0x2000, 1, true}});
  EXPECT_EQ(m.writer.take_last_byte(), host(kBase + 0x2000));
  ASSERT_EQ(m.writer.rest().size(), 1u);
  EXPECT_EQ(m.writer.rest()[0].iov_len, 512u);
}

TEST_F(ChainIoTest, NoWritableBytesMeansNoStatusByte) {
  auto m = map({{kBase, 16, false}});
  EXPECT_EQ(m.writer.take_last_byte(), nullptr);
}

TEST_F(ChainIoTest, WriterFillsAcrossBuffersAndTruncateCutsTheRest) {
  auto m = map({{kBase, 3, true}, {kBase + 0x100, 30, true}});
  m.writer.truncate(5);
  EXPECT_EQ(m.writer.remaining(), 5u);
  ASSERT_EQ(m.writer.rest().size(), 2u);
  EXPECT_EQ(m.writer.rest()[1].iov_len, 2u);
  EXPECT_FALSE(m.writer.write("abcdef", 6));
  ASSERT_TRUE(m.writer.write("abcde", 5));
  EXPECT_EQ(std::memcmp(host(kBase), "abc", 3), 0);
  EXPECT_EQ(std::memcmp(host(kBase + 0x100), "de", 2), 0);
  EXPECT_EQ(host(kBase + 0x102)[0], 0);  // past the cut: untouched
  EXPECT_TRUE(m.writer.rest().empty());
}

TEST_F(ChainIoTest, ReadableBufferAfterWritableIsRefused) {
  auto m = map({{kBase, 16, false}, {kBase + 0x100, 0, true}, {kBase + 0x200, 4, false}});
  EXPECT_EQ(m.error, "readable after writable");
}

TEST_F(ChainIoTest, BufferOutsideGuestRamIsRefused) {
  auto m = map({{kBase + ram.size() - 4, 8, false}});
  EXPECT_EQ(m.error, "buffer outside guest RAM");
}

TEST_F(ChainIoTest, BufferOverTheLimitIsRefused) {
  auto m = map({{kBase, 4097, false}}, 4096);
  EXPECT_EQ(m.error, "buffer larger than size_max");
}

TEST_F(ChainIoTest, EmptyBuffersCarryNoIovec) {
  auto m = map({{kBase, 0, false}, {kBase + 0x10, 16, false}, {kBase + 0x20, 0, true}});
  ASSERT_TRUE(m.error.empty());
  EXPECT_EQ(m.reader.rest().size(), 1u);
  EXPECT_TRUE(m.writer.rest().empty());
}

}  // namespace
}  // namespace minivmm::virtio
