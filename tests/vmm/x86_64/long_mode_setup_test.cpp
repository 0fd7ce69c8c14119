#include "vmm/x86_64/long_mode_setup.h"

#include <gtest/gtest.h>

#include <cstring>
#include <optional>

#include "common/error.h"
#include "vmm/kvm/guest_ram.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {
namespace {

constexpr uint64_t kAddrMask = 0x000ffffffffff000ULL;

// Walks the 4-level tables from CR3 as the MMU does (SDM vol. 3, 4.5);
// nullopt when a level is not present.
std::optional<uint64_t> translate(const GuestMemory& mem, uint64_t cr3, uint64_t va) {
  const uint64_t pml4e = *mem.read<uint64_t>((cr3 & kAddrMask) + ((va >> 39) & 511) * 8);
  if (!(pml4e & kPtePresent)) return std::nullopt;
  const uint64_t pdpte = *mem.read<uint64_t>((pml4e & kAddrMask) + ((va >> 30) & 511) * 8);
  if (!(pdpte & kPtePresent)) return std::nullopt;
  EXPECT_FALSE(pdpte & kPtePageSize) << "expected no 1 GiB pages";
  const uint64_t pde = *mem.read<uint64_t>((pdpte & kAddrMask) + ((va >> 21) & 511) * 8);
  if (!(pde & kPtePresent)) return std::nullopt;
  EXPECT_TRUE(pde & kPtePageSize) << "expected 2 MiB pages";
  EXPECT_TRUE(pde & kPteWritable);
  return (pde & 0x000fffffffe00000ULL) | (va & (kLargePageSize - 1));
}

TEST(LongModeSetupTest, PageTablesIdentityMapTheFirstFourGiB) {
  GuestRamMapping ram(16 << 20);
  std::memset(ram.data() + layout::kPml4Addr, 0xff, 0x7000);  // stale garbage
  write_identity_page_tables(ram.view());
  const GuestMemory mem = ram.view();
  for (uint64_t va : {0x0ULL, 0x7000ULL, 0x1000000ULL, 0x12345678ULL, 0xbfffffffULL, 0xd0000000ULL,
                      0xfec00000ULL, 0xfee00000ULL, 0xffffffffULL}) {
    EXPECT_EQ(translate(mem, layout::kPml4Addr, va), va) << std::hex << va;
  }
  for (uint64_t page = 0; page < 2048; ++page) {
    ASSERT_EQ(translate(mem, layout::kPml4Addr, page * kLargePageSize), page * kLargePageSize);
  }
  EXPECT_FALSE(translate(mem, layout::kPml4Addr, 0x100000000ULL).has_value());
  EXPECT_FALSE(translate(mem, layout::kPml4Addr, 0xffffffff81000000ULL).has_value());
}

TEST(LongModeSetupTest, GdtInMemoryHoldsFlatBootSegments) {
  GuestRamMapping ram(16 << 20);
  write_long_mode_tables(ram.view());
  for (size_t i = 0; i < kBootGdt.size(); ++i) {
    EXPECT_EQ(*ram.view().read<uint64_t>(layout::kGdtAddr + i * 8), kBootGdt[i]);
  }
  const kvm_segment code = segment_from_gdt_entry(kBootGdt[2], kBootCodeSelector);
  EXPECT_EQ(code.base, 0u);
  EXPECT_EQ(code.limit, 0xffffffffu);
  EXPECT_EQ(code.type, 0xb);  // execute/read, accessed
  EXPECT_EQ(code.l, 1);
  EXPECT_EQ(code.db, 0) << "L=1 requires D=0";
  EXPECT_EQ(code.s, 1);
  EXPECT_EQ(code.present, 1);
  EXPECT_EQ(code.g, 1);
  EXPECT_EQ(code.dpl, 0);
  const kvm_segment data = segment_from_gdt_entry(kBootGdt[3], kBootDataSelector);
  EXPECT_EQ(data.limit, 0xffffffffu);
  EXPECT_EQ(data.type, 0x3);  // read/write, accessed
  EXPECT_EQ(data.db, 1);
  EXPECT_EQ(data.l, 0);
  const kvm_segment tss = segment_from_gdt_entry(kBootGdt[4], kBootTssSelector);
  EXPECT_EQ(tss.s, 0) << "TSS is a system segment";
  EXPECT_EQ(tss.type, 0xb) << "busy TSS";
}

TEST(LongModeSetupTest, DecodesBaseAndByteGranularLimit) {
  const kvm_segment s = segment_from_gdt_entry(gdt_entry(0x0093, 0x12345678, 0xabcde), 0x28);
  EXPECT_EQ(s.base, 0x12345678u);
  EXPECT_EQ(s.limit, 0xabcdeu);
  EXPECT_EQ(s.g, 0);
  EXPECT_EQ(s.selector, 0x28);
}

TEST(LongModeSetupTest, SregsEnterLongModeWithBootProtocolSelectors) {
  kvm_sregs sregs{};
  sregs.cr0 = 0x60000010;  // KVM's reset value: CD | NW | ET
  sregs.cr4 = 0;
  sregs.efer = 0;
  set_long_mode_sregs(sregs);

  EXPECT_EQ(sregs.cr0 & (kCr0Pe | kCr0Pg), kCr0Pe | kCr0Pg);
  EXPECT_EQ(sregs.cr0 & (kCr0Cd | kCr0Nw), 0u) << "caches enabled";
  EXPECT_EQ(sregs.cr4 & kCr4Pae, kCr4Pae);
  EXPECT_EQ(sregs.efer & (kEferLme | kEferLma), kEferLme | kEferLma);
  EXPECT_EQ(sregs.cr3, layout::kPml4Addr);
  EXPECT_EQ(sregs.gdt.base, layout::kGdtAddr);
  EXPECT_EQ(sregs.gdt.limit, kBootGdt.size() * 8 - 1);
  // boot.rst: CS = __BOOT_CS (0x10); DS, ES, SS = __BOOT_DS (0x18).
  EXPECT_EQ(sregs.cs.selector, 0x10);
  EXPECT_EQ(sregs.cs.l, 1);
  for (const kvm_segment* s : {&sregs.ds, &sregs.es, &sregs.ss, &sregs.fs, &sregs.gs}) {
    EXPECT_EQ(s->selector, 0x18);
    EXPECT_EQ(s->present, 1);
    EXPECT_EQ(s->type, 0x3);
  }
  EXPECT_EQ(sregs.tr.selector, kBootTssSelector);
  EXPECT_EQ(sregs.tr.present, 1);
}

TEST(LongModeSetupTest, RegsPointAtEntryAndZeroPageWithInterruptsOff) {
  const kvm_regs regs = long_mode_boot_regs(0x1000000);
  EXPECT_EQ(regs.rip, 0x1000000u);
  EXPECT_EQ(regs.rsi, layout::kZeroPageAddr);
  EXPECT_EQ(regs.rflags, 0x2u) << "reserved bit 1 set, IF clear";
  EXPECT_EQ(regs.rsp, layout::kBootStackPointer);
  EXPECT_EQ(regs.rax, 0u);
}

TEST(LongModeSetupTest, RefusesMemoryThatDoesNotCoverThePageTables) {
  GuestRamMapping ram(layout::kPml4Addr + 0x1000);
  EXPECT_THROW(write_identity_page_tables(ram.view()), Error);
}

}  // namespace
}  // namespace minivmm
