// Loads an uncompressed x86_64 Linux kernel (vmlinux, ELF64 ET_EXEC) into
// guest RAM: PT_LOAD segments at their physical addresses (p_paddr).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "common/guest_memory.h"

namespace minivmm {

struct ElfLoadResult {
  uint64_t entry = 0;         // guest physical address of e_entry
  uint64_t kernel_start = 0;  // lowest p_paddr of a PT_LOAD segment
  uint64_t kernel_end = 0;    // one past the highest p_paddr + p_memsz
  // XEN_ELFNOTE_PHYS32_ENTRY (PVH 32-bit entry), informational only.
  std::optional<uint64_t> pvh_entry;
};

// Validates `image` (named `name` in errors) and copies its PT_LOAD segments
// into `mem`, zero-filling p_memsz beyond p_filesz. Segments must lie in RAM
// at or above 1 MiB (below is reserved for boot structures) and below the
// MMIO hole. Throws minivmm::Error on any malformed or unloadable image.
ElfLoadResult load_elf_kernel(const GuestMemory& mem, std::span<const uint8_t> image,
                              const std::string& name);

// True when `image` starts with the ELF magic (to pick a loader).
bool is_elf_image(std::span<const uint8_t> image);

}  // namespace minivmm
