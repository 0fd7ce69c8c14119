#include "vmm/guest_ram.h"

#include <sys/mman.h>

#include "common/error.h"

namespace minivmm {

GuestRam::GuestRam(uint64_t size) : size_(size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    throw sys_error("mmap of " + std::to_string(size >> 20) + " MiB guest RAM");
  }
  data_ = static_cast<uint8_t*>(p);
  // Transparent huge pages cut KVM's page-table work on real hardware.
  madvise(p, size, MADV_HUGEPAGE);
  // Keep guest RAM (the guest's secrets, and gigabytes) out of minivmm's
  // core dumps: madvise(2) MADV_DONTDUMP, the "dd" VmFlag in smaps.
  if (madvise(p, size, MADV_DONTDUMP) != 0) {
    const int err = errno;
    munmap(p, size);
    data_ = nullptr;
    throw sys_error("madvise(MADV_DONTDUMP) on guest RAM", err);
  }
}

GuestRam::~GuestRam() {
  if (data_) munmap(data_, size_);
}

}  // namespace minivmm
