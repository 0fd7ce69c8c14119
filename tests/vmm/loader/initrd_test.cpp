#include "vmm/loader/initrd.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "vmm/kvm/guest_ram.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;
constexpr uint64_t kGiB = 1ULL << 30;

std::string placement_error(uint64_t ram, uint64_t kernel_end, uint64_t size, uint64_t max) {
  try {
    place_initrd(ram, kernel_end, size, max, "initrd.img");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(InitrdTest, GoesToTheHighestPageBelowTheEndOfRam) {
  const InitrdPlacement p = place_initrd(64 * kMiB, 0x2000000, 0x1800, kDefaultInitrdAddrMax, "i");
  EXPECT_EQ(p.addr, 64 * kMiB - 0x2000);
  EXPECT_EQ(p.size, 0x1800u);
}

TEST(InitrdTest, StaysBelowInitrdAddrMax) {
  // initrd_addr_max is the highest usable byte: the initrd ends at or below it + 1.
  const InitrdPlacement p = place_initrd(8 * kGiB, 0x2000000, 0x3000, 0x7fffffff, "i");
  EXPECT_EQ(p.addr, 0x80000000 - 0x3000);
  const InitrdPlacement q = place_initrd(8 * kGiB, 0x2000000, 0x1000, 0x37ffffff, "i");
  EXPECT_EQ(q.addr + q.size, 0x38000000u);
}

TEST(InitrdTest, StaysBelowTheMmioHoleWhateverTheLimit) {
  const InitrdPlacement p = place_initrd(8 * kGiB, 0x2000000, 0x1000, UINT32_MAX, "i");
  EXPECT_EQ(p.addr + p.size, layout::kMmioHoleStart);
}

TEST(InitrdTest, RejectsInitrdThatDoesNotFitAboveTheKernel) {
  const std::string msg = placement_error(64 * kMiB, 0x2000000, 48 * kMiB, kDefaultInitrdAddrMax);
  EXPECT_NE(msg.find("initrd.img"), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not fit"), std::string::npos) << msg;
}

TEST(InitrdTest, RejectsPlacementThatAlignmentPushesIntoTheKernel) {
  // Exactly fits by size, but rounding the start down to a page overlaps.
  const uint64_t kernel_end = 64 * kMiB - 0x1800;
  const std::string msg = placement_error(64 * kMiB, kernel_end, 0x1800, kDefaultInitrdAddrMax);
  EXPECT_NE(msg.find("overlap the kernel"), std::string::npos) << msg;
}

TEST(InitrdTest, RejectsKernelEndAboveTheLimitAndEmptyInitrd) {
  EXPECT_NE(
      placement_error(64 * kMiB, 70 * kMiB, 0x1000, kDefaultInitrdAddrMax).find("does not fit"),
      std::string::npos);
  EXPECT_NE(placement_error(64 * kMiB, 0x2000000, 0, kDefaultInitrdAddrMax).find("empty"),
            std::string::npos);
}

TEST(InitrdTest, LoadCopiesTheBytesWherePlaced) {
  GuestRamMapping ram(32 * kMiB);
  std::vector<uint8_t> initrd(0x2345);
  for (size_t i = 0; i < initrd.size(); ++i) initrd[i] = static_cast<uint8_t>(i * 31);
  const InitrdPlacement p = load_initrd(ram.view(), initrd, 0x1100000, kDefaultInitrdAddrMax, "i");
  EXPECT_EQ(p.addr % 0x1000, 0u);
  EXPECT_GE(p.addr, 0x1100000u);
  EXPECT_LE(p.addr + p.size, ram.size());
  EXPECT_EQ(std::memcmp(ram.data() + p.addr, initrd.data(), initrd.size()), 0);
}

}  // namespace
}  // namespace minivmm
