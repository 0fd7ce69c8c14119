// Guest physical memory map used to boot a 64-bit Linux guest. All boot
// structures live in the first MiB (below the EBDA), the kernel at or above
// 1 MiB, and a 32-bit MMIO hole [3 GiB, 4 GiB) holds the virtio-mmio devices,
// the I/O APIC and the local APIC. RAM beyond 3 GiB continues at 4 GiB: guest
// RAM is at most two ranges, one KVM memory slot each, both in the e820 map.
#pragma once

#include <cstdint>

namespace minivmm::layout {

// GDT for the 64-bit entry (boot.rst "64-bit BOOT PROTOCOL").
inline constexpr uint64_t kGdtAddr = 0x500;
inline constexpr uint64_t kGdtEntryCount = 5;

// One setup_data entry (the RNG seed), linked from the zero page.
inline constexpr uint64_t kSetupDataAddr = 0x6000;
inline constexpr uint64_t kSetupDataMax = 0x1000;

// struct boot_params, the "zero page" (4 KiB).
inline constexpr uint64_t kZeroPageAddr = 0x7000;
inline constexpr uint64_t kZeroPageSize = 0x1000;

// Initial stack pointer handed to the kernel; grows down below the PML4.
inline constexpr uint64_t kBootStackPointer = 0x8ff0;

// Identity page tables: one PML4, one PDPT, 4 PDs of 2 MiB pages = 4 GiB.
inline constexpr uint64_t kPml4Addr = 0x9000;
inline constexpr uint64_t kPdptAddr = 0xa000;
inline constexpr uint64_t kPdAddr = 0xb000;
inline constexpr uint64_t kPdCount = 4;
inline constexpr uint64_t kPageTableSize = 0x1000;
inline constexpr uint64_t kIdentityMapSize = kPdCount << 30;

// Kernel command line buffer, including the terminating NUL.
inline constexpr uint64_t kCmdlineAddr = 0x20000;
inline constexpr uint64_t kCmdlineMax = 0x1000;

// [kEbdaStart, kHighMemStart) is reserved in the e820 map; the MP table lives
// at its start because Linux scans the last KiB of base memory (639 KiB) for
// the MP floating pointer (MP spec 1.4 section 4).
inline constexpr uint64_t kEbdaStart = 0x9fc00;
inline constexpr uint64_t kMpTableAddr = kEbdaStart;
inline constexpr uint64_t kHighMemStart = 0x100000;

// The protected-mode part of a bzImage is loaded at 1 MiB.
inline constexpr uint64_t kBzImageLoadAddr = kHighMemStart;

// 32-bit MMIO hole: RAM above 3 GiB continues at 4 GiB.
inline constexpr uint64_t kMmioHoleStart = 0xc0000000;
inline constexpr uint64_t kMmioHoleEnd = 0x100000000;
inline constexpr uint64_t kHighRamStart = kMmioHoleEnd;

// virtio-mmio register windows, 4 KiB each, from kVirtioMmioBase up to the
// I/O APIC: (0xfec00000 - 0xd0000000) / 4 KiB = 191488 slots.
inline constexpr uint64_t kVirtioMmioBase = 0xd0000000;
inline constexpr uint64_t kVirtioMmioStride = 0x1000;
inline constexpr uint64_t kIoApicAddr = 0xfec00000;
inline constexpr uint64_t kLocalApicAddr = 0xfee00000;
inline constexpr uint64_t kVirtioMmioSlots = (kIoApicAddr - kVirtioMmioBase) / kVirtioMmioStride;

constexpr uint64_t virtio_mmio_address(uint64_t index) {
  return kVirtioMmioBase + index * kVirtioMmioStride;
}

// Boot images, tables and the initrd all go below the MMIO hole.
constexpr uint64_t low_ram_end(uint64_t ram_size) {
  return ram_size < kMmioHoleStart ? ram_size : kMmioHoleStart;
}

// RAM that does not fit below the MMIO hole; it starts at kHighRamStart.
constexpr uint64_t high_ram_size(uint64_t ram_size) {
  return ram_size > kMmioHoleStart ? ram_size - kMmioHoleStart : 0;
}

// End of the guest-physical span RAM occupies (the hole included when RAM
// reaches past it): the top GPA + 1.
constexpr uint64_t ram_top(uint64_t ram_size) {
  return high_ram_size(ram_size) ? kHighRamStart + high_ram_size(ram_size) : ram_size;
}

// One guest-physical range of RAM.
struct RamRange {
  uint64_t gpa = 0;
  uint64_t size = 0;
};

// [0, low_ram_end) and, when RAM is larger than 3 GiB, [4 GiB, 4 GiB + rest).
// `count` is 1 or 2.
struct RamRanges {
  RamRange range[2];
  unsigned count = 0;
};

constexpr RamRanges ram_ranges(uint64_t ram_size) {
  RamRanges r{};
  r.range[r.count++] = {0, low_ram_end(ram_size)};
  if (high_ram_size(ram_size)) r.range[r.count++] = {kHighRamStart, high_ram_size(ram_size)};
  return r;
}

// Whether [gpa, gpa + len) intersects the MMIO hole (len > 0, no overflow).
constexpr bool overlaps_mmio_hole(uint64_t gpa, uint64_t len) {
  return gpa < kMmioHoleEnd && gpa + len > kMmioHoleStart;
}

// Low-memory objects must not overlap each other.
static_assert(kGdtAddr + kGdtEntryCount * 8 <= kSetupDataAddr);
static_assert(kSetupDataAddr + kSetupDataMax <= kZeroPageAddr);
static_assert(kZeroPageAddr + kZeroPageSize <= kBootStackPointer);
static_assert(kBootStackPointer < kPml4Addr);
static_assert(kPml4Addr + kPageTableSize <= kPdptAddr);
static_assert(kPdptAddr + kPageTableSize <= kPdAddr);
static_assert(kPdAddr + kPdCount * kPageTableSize <= kCmdlineAddr);
static_assert(kCmdlineAddr + kCmdlineMax <= kEbdaStart);
static_assert(kVirtioMmioBase >= kMmioHoleStart && kIoApicAddr < kMmioHoleEnd);
static_assert(ram_top(kMmioHoleStart) == kMmioHoleStart);
static_assert(ram_top(kMmioHoleStart + 0x100000) == kHighRamStart + 0x100000);
static_assert(ram_ranges(5ull << 30).count == 2 &&
              ram_ranges(5ull << 30).range[1].size == 2ull << 30);

}  // namespace minivmm::layout
