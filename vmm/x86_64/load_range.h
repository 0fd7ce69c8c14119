// Validation shared by every loader that writes boot data into guest RAM:
// a range must lie in RAM below the 32-bit MMIO hole, and all arithmetic on
// untrusted sizes must be checked for overflow before use.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>

#include "common/error.h"
#include "common/guest_memory.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {

// a + b, or throws naming `what` when the sum wraps around 64 bits.
inline uint64_t checked_add(uint64_t a, uint64_t b, const std::string& what) {
  uint64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    throw Error(fmt::format("{}: {:#x} + {:#x} overflows 64 bits", what, a, b));
  }
  return sum;
}

// Throws unless [gpa, gpa + len) is inside guest RAM below the MMIO hole.
inline void check_load_range(const GuestMemory& mem, uint64_t gpa, uint64_t len,
                             const std::string& what) {
  const uint64_t end = checked_add(gpa, len, what);
  if (len != 0 && layout::overlaps_mmio_hole(gpa, len)) {
    throw Error(fmt::format("{}: [{:#x}, {:#x}) overlaps the 32-bit MMIO hole [{:#x}, {:#x})", what,
                            gpa, end, layout::kMmioHoleStart, layout::kMmioHoleEnd));
  }
  const uint64_t ram_end = layout::low_ram_end(mem.size());
  if (gpa < mem.base() || end > ram_end || mem.translate(gpa, len) == nullptr) {
    throw Error(fmt::format("{}: [{:#x}, {:#x}) is outside guest RAM [{:#x}, {:#x})", what, gpa,
                            end, mem.base(), ram_end));
  }
}

}  // namespace minivmm
