// Guest RAM above 4 GiB: the host mapping mirrors the guest-physical layout,
// the MMIO hole is refused and reserved PROT_NONE, and nothing is allocated
// until touched.
#include "vmm/kvm/guest_ram.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "vmm/x86_64/memory_layout.h"

namespace minivmm {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;
constexpr uint64_t kGiB = 1ULL << 30;

// "rw-p", "---p", ... of the mapping that contains `addr` (/proc/self/maps).
std::string protection_at(const void* addr) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto a = reinterpret_cast<uintptr_t>(addr);
  while (std::getline(maps, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::string perms;
    std::istringstream in(line);
    in >> std::hex >> lo >> dash >> hi >> perms;
    if (a >= lo && a < hi) return perms;
  }
  return "";
}

uint64_t rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

TEST(GuestRamTest, SmallRamIsOneRangeWithoutHole) {
  GuestRamMapping ram(64 * kMiB);
  EXPECT_EQ(ram.mapping_size(), 64 * kMiB);
  ASSERT_EQ(ram.ranges().count, 1u);
  EXPECT_EQ(ram.view().size(), 64 * kMiB);
  EXPECT_EQ(ram.view().translate(64 * kMiB - 8, 8), ram.data() + 64 * kMiB - 8);
  EXPECT_EQ(ram.view().translate(64 * kMiB - 8, 9), nullptr);
}

TEST(GuestRamTest, RamAboveThreeGiBContinuesAtFourGiB) {
  GuestRamMapping ram(5 * kGiB);
  EXPECT_EQ(ram.size(), 5 * kGiB);
  EXPECT_EQ(ram.mapping_size(), 6 * kGiB) << "3 GiB low, the 1 GiB hole, 2 GiB high";
  const layout::RamRanges r = ram.ranges();
  ASSERT_EQ(r.count, 2u);
  EXPECT_EQ(r.range[0].gpa, 0u);
  EXPECT_EQ(r.range[0].size, 3 * kGiB);
  EXPECT_EQ(r.range[1].gpa, 4 * kGiB);
  EXPECT_EQ(r.range[1].size, 2 * kGiB);

  const GuestMemory mem = ram.view();
  // Both ends of both ranges are RAM, at data() + gpa.
  for (uint64_t gpa : {uint64_t{0}, 3 * kGiB - 8, 4 * kGiB, 6 * kGiB - 8}) {
    EXPECT_EQ(mem.translate(gpa, 8), ram.data() + gpa) << std::hex << gpa;
    EXPECT_TRUE(mem.write<uint64_t>(gpa, gpa ^ 0x5a5a));
    EXPECT_EQ(mem.read<uint64_t>(gpa), gpa ^ 0x5a5a);
  }
  // The hole, and anything touching it or the end, is refused.
  EXPECT_EQ(mem.translate(3 * kGiB, 1), nullptr);
  EXPECT_EQ(mem.translate(3 * kGiB - 4, 8), nullptr);
  EXPECT_EQ(mem.translate(4 * kGiB - 1, 2), nullptr);
  EXPECT_EQ(mem.translate(layout::kVirtioMmioBase, 4), nullptr);
  EXPECT_EQ(mem.translate(2 * kGiB, 3 * kGiB), nullptr) << "a range spanning the hole";
  EXPECT_EQ(mem.translate(6 * kGiB - 4, 8), nullptr);
  EXPECT_EQ(mem.translate(6 * kGiB, 1), nullptr);
}

TEST(GuestRamTest, HoleIsReservedInaccessibleAndRamReadWrite) {
  GuestRamMapping ram(4 * kGiB);
  EXPECT_EQ(protection_at(ram.data()), "rw-p");
  EXPECT_EQ(protection_at(ram.data() + 3 * kGiB), "---p");
  EXPECT_EQ(protection_at(ram.data() + 4 * kGiB - 1), "---p");
  EXPECT_EQ(protection_at(ram.data() + 4 * kGiB), "rw-p");
  EXPECT_EQ(protection_at(ram.data() + 5 * kGiB - 1), "rw-p");
}

TEST(GuestRamTest, SixteenGiBThatTouchesHundredMiBCostsAboutHundredMiB) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer's shadow memory is in RSS too (about 4x what is touched)";
#endif
  const uint64_t before = rss_bytes();
  GuestRamMapping ram(16 * kGiB);
  // 50 MiB at the bottom and 50 MiB at the very top of RAM.
  std::memset(ram.data() + 16 * kMiB, 0xa5, 50 * kMiB);
  std::memset(ram.data() + ram.mapping_size() - 50 * kMiB, 0x5a, 50 * kMiB);
  const uint64_t grown = rss_bytes() - before;
  EXPECT_GE(grown, 100 * kMiB);
  // Transparent huge pages may round each end up to 2 MiB; nothing more.
  EXPECT_LT(grown, 120 * kMiB) << "guest RAM must be allocated lazily";
}

TEST(MemoryLayoutTest, RamTopAndRangesAtTheEdges) {
  EXPECT_EQ(layout::ram_top(64 * kMiB), 64 * kMiB);
  EXPECT_EQ(layout::ram_top(3 * kGiB), 3 * kGiB);
  EXPECT_EQ(layout::ram_ranges(3 * kGiB).count, 1u);
  EXPECT_EQ(layout::ram_top(3 * kGiB + kMiB), 4 * kGiB + kMiB);
  EXPECT_EQ(layout::ram_top(1024 * kGiB), 1025 * kGiB);
  const layout::RamRanges r = layout::ram_ranges(1024 * kGiB);
  ASSERT_EQ(r.count, 2u);
  EXPECT_EQ(r.range[1].gpa + r.range[1].size, 1025 * kGiB);
}

}  // namespace
}  // namespace minivmm
