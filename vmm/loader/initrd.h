// Places an initial ramdisk in guest RAM: at the highest page-aligned address
// that keeps it below the kernel's initrd_addr_max and the MMIO hole, and
// above the kernel image (boot.rst "initrd_addr_max", "ramdisk_image").
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/guest_memory.h"

namespace minivmm {

// vmlinux has no setup header; 64-bit kernels advertise 0x7fffffff.
inline constexpr uint64_t kDefaultInitrdAddrMax = 0x7fffffff;

struct InitrdPlacement {
  uint64_t addr = 0;
  uint64_t size = 0;
};

// Where an initrd of `size` bytes goes. `initrd_addr_max` is the address of
// the highest byte it may occupy; `kernel_end` is one past the kernel's
// memory. Throws naming `name` when it does not fit.
InitrdPlacement place_initrd(uint64_t ram_size, uint64_t kernel_end, uint64_t size,
                             uint64_t initrd_addr_max, const std::string& name);

// place_initrd on mem.size(), then copies `initrd` there.
InitrdPlacement load_initrd(const GuestMemory& mem, std::span<const uint8_t> initrd,
                            uint64_t kernel_end, uint64_t initrd_addr_max, const std::string& name);

}  // namespace minivmm
