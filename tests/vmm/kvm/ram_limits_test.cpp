#include "vmm/kvm/ram_limits.h"

#include <gtest/gtest.h>

#include <string>

#include "vmm/config/config.h"

namespace minivmm {
namespace {

constexpr uint64_t kGiB = 1ULL << 30;

HostMemory host(uint64_t ram, uint64_t swap, int mode = 0) {
  HostMemory h;
  h.mem_total = ram;
  h.swap_total = swap;
  h.overcommit_mode = mode;
  return h;
}

std::string error_of(uint64_t ram, const std::vector<RamLimit>& limits) {
  try {
    check_guest_ram(ram, limits);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(RamLimitsTest, HostRamAndSwapBoundAGuestUnderHeuristicOvercommit) {
  const auto limits = guest_ram_limits(host(24 * kGiB, 2 * kGiB), 46);
  ASSERT_FALSE(limits.empty());
  EXPECT_EQ(limits.front().bytes, 26 * kGiB);
  EXPECT_EQ(error_of(16 * kGiB, limits), "");
  EXPECT_EQ(error_of(26 * kGiB, limits), "");
  const std::string e = error_of(26 * kGiB + (1 << 20), limits);
  EXPECT_NE(e.find("machine.memory_mib = 26625"), std::string::npos) << e;
  EXPECT_NE(e.find("at most 26624 MiB"), std::string::npos) << e;
  EXPECT_NE(e.find("vm.overcommit_memory=0"), std::string::npos) << e;
}

TEST(RamLimitsTest, AlwaysOvercommitLeavesKvmsBounds) {
  const auto limits = guest_ram_limits(host(8 * kGiB, 0, 1), 40);
  ASSERT_FALSE(limits.empty());
  // 40 bits = 1 TiB of guest-physical space, less the 1 GiB MMIO hole.
  EXPECT_EQ(limits.front().bytes, 1023 * kGiB);
  EXPECT_NE(limits.front().why.find("40-bit"), std::string::npos);
  EXPECT_EQ(error_of(64 * kGiB, limits), "");
  EXPECT_NE(error_of(1024 * kGiB, limits).find("CPUID 0x80000008"), std::string::npos);
}

TEST(RamLimitsTest, KvmSlotSizeBoundsWideAddressSpaces) {
  const auto limits = guest_ram_limits(host(8 * kGiB, 0, 1), 52);
  ASSERT_FALSE(limits.empty());
  EXPECT_EQ(limits.front().bytes, 3 * kGiB + ((1ULL << 31) - 1) * 4096);
  EXPECT_NE(limits.front().why.find("KVM_MEM_MAX_NR_PAGES"), std::string::npos);
}

TEST(RamLimitsTest, StrictOvercommitUsesTheCommitRoom) {
  HostMemory h = host(16 * kGiB, 0, 2);
  h.commit_limit = 10 * kGiB;
  h.committed_as = 4 * kGiB;
  const auto limits = guest_ram_limits(h, 46);
  EXPECT_EQ(limits.front().bytes, 6 * kGiB);
  EXPECT_NE(limits.front().why.find("CommitLimit"), std::string::npos);
}

TEST(RamLimitsTest, AddressSpaceLimitCountsTheHole) {
  HostMemory h = host(64 * kGiB, 0, 0);
  h.address_space_limit = 8 * kGiB;
  const auto limits = guest_ram_limits(h, 46);
  EXPECT_EQ(limits.front().bytes, 7 * kGiB);
  EXPECT_NE(limits.front().why.find("RLIMIT_AS"), std::string::npos);
}

TEST(RamLimitsTest, PhysAddrBitsFromCpuid) {
  std::vector<kvm_cpuid_entry2> cpuid(2);
  cpuid[0].function = 0;
  cpuid[1].function = 0x80000008;
  cpuid[1].eax = 0x3027;  // 39 bits physical, 48 virtual
  EXPECT_EQ(guest_phys_addr_bits(cpuid), 39u);
  cpuid.pop_back();
  EXPECT_EQ(guest_phys_addr_bits(cpuid), 36u) << "no leaf: the architectural default";
}

TEST(RamLimitsTest, ThisHostAllowsItsOwnRam) {
  const HostMemory h = read_host_memory();
  EXPECT_GT(h.mem_total, 0u);
  const auto limits = guest_ram_limits(h, 40);
  ASSERT_FALSE(limits.empty());
  EXPECT_EQ(error_of(64 << 20, limits), "");
}

}  // namespace
}  // namespace minivmm
