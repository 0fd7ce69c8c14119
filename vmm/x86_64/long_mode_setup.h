// The CPU and memory state for entering a Linux kernel in 64-bit mode
// (boot.rst "64-bit BOOT PROTOCOL"): a flat GDT with __BOOT_CS = 0x10 and
// __BOOT_DS = 0x18, identity-mapped paging for the first 4 GiB, and
// RSI = the zero page. Everything is plain data, testable without KVM.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>

#include "common/guest_memory.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {

inline constexpr uint64_t kCr0Pe = 1ULL << 0;
inline constexpr uint64_t kCr0Et = 1ULL << 4;
inline constexpr uint64_t kCr0Nw = 1ULL << 29;
inline constexpr uint64_t kCr0Cd = 1ULL << 30;
inline constexpr uint64_t kCr0Pg = 1ULL << 31;
inline constexpr uint64_t kCr4Pae = 1ULL << 5;
inline constexpr uint64_t kEferLme = 1ULL << 8;
inline constexpr uint64_t kEferLma = 1ULL << 10;

// Page-table entry bits (Intel SDM vol. 3, 4.5).
inline constexpr uint64_t kPtePresent = 1ULL << 0;
inline constexpr uint64_t kPteWritable = 1ULL << 1;
inline constexpr uint64_t kPtePageSize = 1ULL << 7;
inline constexpr uint64_t kLargePageSize = 2ULL << 20;

inline constexpr uint16_t kBootCodeSelector = 0x10;  // __BOOT_CS
inline constexpr uint16_t kBootDataSelector = 0x18;  // __BOOT_DS
inline constexpr uint16_t kBootTssSelector = 0x20;

// An 8-byte segment descriptor from the access/flags word (type, S, DPL, P
// in bits 0-7; AVL, L, D/B, G in bits 12-15), base and 20-bit limit.
constexpr uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((uint64_t{base} & 0xff000000) << 32) | ((uint64_t{flags} & 0xf0ff) << 40) |
         ((uint64_t{limit} & 0xf0000) << 32) | ((uint64_t{base} & 0x00ffffff) << 16) |
         (uint64_t{limit} & 0xffff);
}

// Index = selector / 8. Entry 1 is unused so the selectors match boot.rst.
inline constexpr std::array<uint64_t, layout::kGdtEntryCount> kBootGdt = {
    0,                              // null
    0,                              // unused
    gdt_entry(0xa09b, 0, 0xfffff),  // 0x10: 64-bit code, execute/read
    gdt_entry(0xc093, 0, 0xfffff),  // 0x18: 4 GiB flat data, read/write
    gdt_entry(0x808b, 0, 0xfffff),  // 0x20: busy TSS (KVM needs a usable TR)
};
static_assert(kBootGdt[2] == 0x00af9b000000ffffULL);
static_assert(kBootGdt[3] == 0x00cf93000000ffffULL);

// The kvm_segment that loading `selector` from `descriptor` would produce.
kvm_segment segment_from_gdt_entry(uint64_t descriptor, uint16_t selector);

// Writes kBootGdt at layout::kGdtAddr.
void write_boot_gdt(const GuestMemory& mem);

// Writes PML4/PDPT/PDs at layout::kPml4Addr.. identity-mapping
// [0, layout::kIdentityMapSize) with 2 MiB pages.
void write_identity_page_tables(const GuestMemory& mem);

// Both of the above; throws when RAM does not cover the tables.
void write_long_mode_tables(const GuestMemory& mem);

// Modifies `sregs` (as read with KVM_GET_SREGS) for 64-bit mode: CR0 PE|PG,
// CR4 PAE, EFER LME|LMA, CR3 = PML4, segments and GDTR from kBootGdt.
void set_long_mode_sregs(kvm_sregs& sregs);

// General registers at entry: RIP = entry, RSI = zero page, RFLAGS = 2
// (interrupts off), RSP/RBP = boot stack.
kvm_regs long_mode_boot_regs(uint64_t entry);

}  // namespace minivmm
