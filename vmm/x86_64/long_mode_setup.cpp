#include "vmm/x86_64/long_mode_setup.h"

#include <cstring>

#include "vmm/x86_64/load_range.h"

namespace minivmm {
namespace {

// RFLAGS bit 1 is reserved and always set.
constexpr uint64_t kRflagsReserved = 1ULL << 1;
constexpr uint64_t kEntriesPerTable = 512;

}  // namespace

kvm_segment segment_from_gdt_entry(uint64_t d, uint16_t selector) {
  kvm_segment s{};
  s.base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
  const uint32_t raw_limit = static_cast<uint32_t>((d & 0xffff) | (((d >> 48) & 0xf) << 16));
  s.g = (d >> 55) & 1;
  s.limit = s.g ? (raw_limit << 12) | 0xfff : raw_limit;
  s.selector = selector;
  s.type = (d >> 40) & 0xf;
  s.s = (d >> 44) & 1;
  s.dpl = (d >> 45) & 3;
  s.present = (d >> 47) & 1;
  s.avl = (d >> 52) & 1;
  s.l = (d >> 53) & 1;
  s.db = (d >> 54) & 1;
  s.unusable = s.present ? 0 : 1;
  return s;
}

void write_boot_gdt(const GuestMemory& mem) {
  check_load_range(mem, layout::kGdtAddr, sizeof(kBootGdt), "boot GDT");
  std::memcpy(mem.translate(layout::kGdtAddr, sizeof(kBootGdt)), kBootGdt.data(), sizeof(kBootGdt));
}

void write_identity_page_tables(const GuestMemory& mem) {
  const uint64_t tables_end = layout::kPdAddr + layout::kPdCount * layout::kPageTableSize;
  check_load_range(mem, layout::kPml4Addr, tables_end - layout::kPml4Addr, "page tables");
  std::memset(mem.translate(layout::kPml4Addr, tables_end - layout::kPml4Addr), 0,
              tables_end - layout::kPml4Addr);

  mem.write<uint64_t>(layout::kPml4Addr, layout::kPdptAddr | kPtePresent | kPteWritable);
  for (uint64_t pd = 0; pd < layout::kPdCount; ++pd) {
    const uint64_t pd_addr = layout::kPdAddr + pd * layout::kPageTableSize;
    mem.write<uint64_t>(layout::kPdptAddr + pd * 8, pd_addr | kPtePresent | kPteWritable);
    for (uint64_t i = 0; i < kEntriesPerTable; ++i) {
      const uint64_t phys = (pd * kEntriesPerTable + i) * kLargePageSize;
      mem.write<uint64_t>(pd_addr + i * 8, phys | kPtePresent | kPteWritable | kPtePageSize);
    }
  }
}

void write_long_mode_tables(const GuestMemory& mem) {
  write_boot_gdt(mem);
  write_identity_page_tables(mem);
}

void set_long_mode_sregs(kvm_sregs& sregs) {
  const kvm_segment code = segment_from_gdt_entry(kBootGdt[2], kBootCodeSelector);
  const kvm_segment data = segment_from_gdt_entry(kBootGdt[3], kBootDataSelector);
  sregs.cs = code;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.tr = segment_from_gdt_entry(kBootGdt[4], kBootTssSelector);

  sregs.gdt.base = layout::kGdtAddr;
  sregs.gdt.limit = sizeof(kBootGdt) - 1;
  // No IDT: the kernel installs its own before enabling interrupts.
  sregs.idt.base = 0;
  sregs.idt.limit = 0;

  sregs.cr3 = layout::kPml4Addr;
  sregs.cr4 |= kCr4Pae;
  sregs.cr0 = (sregs.cr0 | kCr0Pe | kCr0Et | kCr0Pg) & ~(kCr0Cd | kCr0Nw);
  sregs.efer |= kEferLme | kEferLma;
}

kvm_regs long_mode_boot_regs(uint64_t entry) {
  kvm_regs regs{};
  regs.rflags = kRflagsReserved;
  regs.rip = entry;
  regs.rsi = layout::kZeroPageAddr;
  regs.rsp = layout::kBootStackPointer;
  regs.rbp = layout::kBootStackPointer;
  return regs;
}

}  // namespace minivmm
