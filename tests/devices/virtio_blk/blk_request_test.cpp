#include "devices/virtio_blk/blk_request.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "devices/virtio_blk/virtio_blk_spec.h"

namespace minivmm::virtio::blk {
namespace {

using Disposition = BlkRequest::Disposition;
using storage::RequestType;

constexpr uint64_t kBase = 0x100000;

class BlkRequestTest : public ::testing::Test {
 protected:
  std::vector<uint8_t> ram = std::vector<uint8_t>(0x10000, 0);
  GuestMemory mem{ram.data(), {.base = kBase, .size = ram.size()}};
  RequestLimits limits{.image = {.size_bytes = 100ull * 512, .block_size = 512, .read_only = false},
                       .discard = true,
                       .write_zeroes = true,
                       .max_discard_sectors = 64,
                       .max_write_zeroes_sectors = 64};
  static constexpr uint64_t kHeader = kBase;
  static constexpr uint64_t kData = kBase + 0x1000;
  static constexpr uint64_t kStatus = kBase + 0x3000;

  void header(uint32_t type, uint64_t sector) {
    std::memcpy(&ram[0], &type, 4);
    std::memcpy(&ram[8], &sector, 8);
  }
  static DescriptorChain chain(std::vector<Descriptor> d) {
    DescriptorChain c;
    c.descriptors = std::move(d);
    return c;
  }
  BlkRequest parse(std::vector<Descriptor> d) {
    return parse_blk_request(mem, chain(std::move(d)), limits);
  }
};

TEST_F(BlkRequestTest, ReadAcrossSeveralBuffers) {
  header(kTypeIn, 10);
  auto r = parse(
      {{kHeader, 16, false}, {kData, 512, true}, {kData + 1024, 1024, true}, {kStatus, 1, true}});
  ASSERT_TRUE(r.goes_to_disk_as(RequestType::Read));
  EXPECT_EQ(r.offset, 10u * 512);
  EXPECT_EQ(r.length, 1536u);
  ASSERT_EQ(r.data.size(), 2u);
  EXPECT_EQ(r.data[0].iov_base, ram.data() + 0x1000);
  EXPECT_EQ(r.data[1].iov_len, 1024u);
  EXPECT_EQ(r.status, ram.data() + 0x3000);
  EXPECT_EQ(r.used_len, 1537u);
}

TEST_F(BlkRequestTest, WriteDataFollowsHeaderInSameBuffer) {
  header(kTypeOut, 0);
  auto r = parse({{kHeader, 16 + 512, false}, {kStatus, 1, true}});
  ASSERT_TRUE(r.goes_to_disk_as(RequestType::Write));
  ASSERT_EQ(r.data.size(), 1u);
  EXPECT_EQ(r.data[0].iov_base, ram.data() + 16);
  EXPECT_EQ(r.data[0].iov_len, 512u);
  EXPECT_EQ(r.used_len, 1u);
}

TEST_F(BlkRequestTest, StatusIsLastByteOfLastBuffer) {
  header(kTypeIn, 0);
  auto r = parse({{kHeader, 16, false}, {kData, 513, true}});
  ASSERT_TRUE(r.goes_to_disk_as(RequestType::Read));
  EXPECT_EQ(r.status, ram.data() + 0x1000 + 512);
  EXPECT_EQ(r.length, 512u);
}

TEST_F(BlkRequestTest, ChainErrorMeansNoStatus) {
  header(kTypeIn, 0);
  auto c = chain({{kHeader, 16, false}, {kStatus, 1, true}});
  c.error = ChainError::TooLong;
  auto r = parse_blk_request(mem, c, limits);
  EXPECT_EQ(r.disposition, Disposition::NoStatus);
  EXPECT_EQ(r.status, nullptr);
}

TEST_F(BlkRequestTest, StatusAddressWrappingIsNoStatus) {
  // addr + len - 1 wraps to a small in-RAM address: must not be used.
  auto r = parse({{kHeader, 16, false},
                  {~uint64_t{0} - 0x10, static_cast<uint32_t>(0x12 + kBase + 0x10), true}});
  EXPECT_EQ(r.disposition, Disposition::NoStatus);
  EXPECT_EQ(r.status, nullptr);
}

TEST_F(BlkRequestTest, CapacityBoundaries) {
  header(kTypeIn, 99);
  EXPECT_TRUE(parse({{kHeader, 16, false}, {kData, 512, true}, {kStatus, 1, true}})
                  .goes_to_disk_as(RequestType::Read));
  EXPECT_EQ(parse({{kHeader, 16, false}, {kData, 1024, true}, {kStatus, 1, true}}).disposition,
            Disposition::Invalid);
  header(kTypeIn, 100);
  EXPECT_TRUE(parse({{kHeader, 16, false}, {kStatus, 1, true}})
                  .goes_to_disk_as(RequestType::Read));  // empty
  header(kTypeIn, 101);
  EXPECT_EQ(parse({{kHeader, 16, false}, {kStatus, 1, true}}).disposition, Disposition::Invalid);
}

TEST_F(BlkRequestTest, RequestsTheDiskBlockSizeMisalignsAreRefusedBeforeTheDisk) {
  // A 4096-byte logical block disk: 512-byte sectors that do not start or
  // end on a block would fail in the Disk; the parser refuses them with the
  // Disk's own reason instead of handing them down.
  limits.image.block_size = 4096;
  header(kTypeIn, 1);
  BlkRequest r = parse({{kHeader, 16, false}, {kData, 4096, true}, {kStatus, 1, true}});
  EXPECT_EQ(r.disposition, Disposition::Invalid);
  EXPECT_EQ(r.why, storage::check_range(RequestType::Read, 512, 4096, limits.image).why);
  header(kTypeIn, 8);
  EXPECT_EQ(parse({{kHeader, 16, false}, {kData, 512, true}, {kStatus, 1, true}}).disposition,
            Disposition::Invalid);
  EXPECT_TRUE(parse({{kHeader, 16, false}, {kData, 4096, true}, {kStatus, 1, true}})
                  .goes_to_disk_as(RequestType::Read));
  header(kTypeWriteZeroes, 0);
  const uint64_t seg[2] = {0, 4};  // 2048 bytes: half a block
  std::memcpy(&ram[16], seg, 16);
  EXPECT_EQ(parse({{kHeader, 32, false}, {kStatus, 1, true}}).disposition, Disposition::Invalid);
}

TEST_F(BlkRequestTest, SectorWhoseByteOffsetOverflowsIsBeyondTheDisk) {
  // sector * 512 wraps to 0: it must not read as the start of the disk.
  header(kTypeIn, uint64_t{1} << 55);
  EXPECT_EQ(parse({{kHeader, 16, false}, {kData, 512, true}, {kStatus, 1, true}}).disposition,
            Disposition::Invalid);
}

TEST_F(BlkRequestTest, WriteToReadOnlyDiskInvalid) {
  limits.image.read_only = true;
  header(kTypeOut, 0);
  EXPECT_EQ(parse({{kHeader, 16 + 512, false}, {kStatus, 1, true}}).disposition,
            Disposition::Invalid);
  header(kTypeWriteZeroes, 0);
  const uint64_t seg[2] = {0, 1};
  std::memcpy(&ram[16], seg, 16);
  EXPECT_EQ(parse({{kHeader, 32, false}, {kStatus, 1, true}}).disposition, Disposition::Invalid);
  header(kTypeFlush, 0);
  EXPECT_TRUE(
      parse({{kHeader, 16, false}, {kStatus, 1, true}}).goes_to_disk_as(RequestType::Flush));
}

TEST_F(BlkRequestTest, SegmentLimits) {
  header(kTypeWriteZeroes, 0);
  uint64_t seg[2] = {0, 65};  // above max_write_zeroes_sectors
  std::memcpy(&ram[16], seg, 16);
  EXPECT_EQ(parse({{kHeader, 32, false}, {kStatus, 1, true}}).disposition, Disposition::Invalid);
  seg[1] = 64 | (uint64_t{2} << 32);  // reserved flag bit
  std::memcpy(&ram[16], seg, 16);
  EXPECT_EQ(parse({{kHeader, 32, false}, {kStatus, 1, true}}).disposition,
            Disposition::Unsupported);
  EXPECT_EQ(parse({{kHeader, 24, false}, {kStatus, 1, true}}).disposition, Disposition::Invalid);
}

TEST_F(BlkRequestTest, GetIdShortBuffer) {
  header(kTypeGetId, 0);
  auto r = parse({{kHeader, 16, false}, {kData, 8, true}, {kStatus, 1, true}});
  ASSERT_EQ(r.disposition, Disposition::GetId);
  EXPECT_EQ(r.length, 8u);
  EXPECT_EQ(r.used_len, 9u);
  EXPECT_EQ(parse({{kHeader, 16, false}, {kStatus, 1, true}}).disposition, Disposition::Invalid);
}

}  // namespace
}  // namespace minivmm::virtio::blk
