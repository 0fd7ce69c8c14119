#include "vmm/kvm/guest_ram.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include "common/error.h"

namespace minivmm {
namespace {

// Unmaps on scope exit unless released: the constructor's error paths.
struct MappingGuard {
  void* addr;
  uint64_t len;
  ~MappingGuard() {
    if (addr) munmap(addr, len);
  }
};

}  // namespace

GuestRamMapping::GuestRamMapping(uint64_t size) : size_(size) {
  const uint64_t span = mapping_size();
  // Reserve the whole span inaccessible, then open up the RAM ranges: the
  // hole stays PROT_NONE, and under vm.overcommit_memory=2 only the RAM is
  // charged (mmap(2): a PROT_NONE private mapping is not accounted).
  void* p = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    throw sys_error(fmt::format("mmap of {} MiB guest RAM ({} MiB of address space)", size >> 20,
                                span >> 20),
                    err);
  }
  MappingGuard guard{p, span};
  auto* base = static_cast<uint8_t*>(p);
  const layout::RamRanges r = ranges();
  for (unsigned i = 0; i < r.count; ++i) {
    if (mprotect(base + r.range[i].gpa, r.range[i].size, PROT_READ | PROT_WRITE) != 0) {
      const int err = errno;
      throw sys_error(fmt::format("mprotect of guest RAM [{:#x}, {:#x}) read-write", r.range[i].gpa,
                                  r.range[i].gpa + r.range[i].size),
                      err);
    }
    // Transparent huge pages cut KVM's page-table work on real hardware.
    madvise(base + r.range[i].gpa, r.range[i].size, MADV_HUGEPAGE);
  }
  // Keep guest RAM (the guest's secrets, and gigabytes) out of minivmm's
  // core dumps: madvise(2) MADV_DONTDUMP, the "dd" VmFlag in smaps. The
  // whole span, so every VMA of it (RAM and hole) carries the flag.
  if (madvise(p, span, MADV_DONTDUMP) != 0) {
    throw sys_error("madvise(MADV_DONTDUMP) on guest RAM");
  }
  guard.addr = nullptr;
  data_ = base;
}

GuestRamMapping::~GuestRamMapping() {
  if (data_) munmap(data_, mapping_size());
}

GuestMemory GuestRamMapping::view() const {
  const uint64_t hole_start = layout::high_ram_size(size_) ? layout::kMmioHoleStart : 0;
  const uint64_t hole_end = layout::high_ram_size(size_) ? layout::kMmioHoleEnd : 0;
  return GuestMemory(
      data_, {.base = 0, .size = mapping_size(), .hole_start = hole_start, .hole_end = hole_end});
}

}  // namespace minivmm
