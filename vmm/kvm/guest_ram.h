// Anonymous host mapping that backs guest RAM (RAII munmap). The mapping
// mirrors the guest-physical layout of memory_layout.h: host address
// data() + gpa backs gpa. For RAM above 3 GiB it spans [0, ram_top) with the
// MMIO hole [3 GiB, 4 GiB) reserved PROT_NONE (address space only, no
// memory), so the RAM past the hole continues at data() + 4 GiB.
//
// Nothing is allocated up front: the pages are MAP_NORESERVE anonymous
// memory, faulted in when the guest (or minivmm) first touches them, so a
// 16 GiB guest that uses 100 MiB costs about 100 MiB.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/guest_memory.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {

class GuestRamMapping {
 public:
  // `size`: bytes of RAM (not of guest-physical span).
  explicit GuestRamMapping(uint64_t size);
  ~GuestRamMapping();
  GuestRamMapping(const GuestRamMapping&) = delete;
  GuestRamMapping& operator=(const GuestRamMapping&) = delete;

  // Host address of guest physical address 0.
  uint8_t* data() const { return data_; }
  // Bytes of RAM.
  uint64_t size() const { return size_; }
  // Bytes of the host mapping: the guest-physical span, hole included.
  uint64_t mapping_size() const { return layout::ram_top(size_); }
  // The RAM ranges, each one KVM memory slot.
  layout::RamRanges ranges() const { return layout::ram_ranges(size_); }
  // The guest's view; the MMIO hole, when RAM reaches past it, is refused.
  GuestMemory view() const;

 private:
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace minivmm
