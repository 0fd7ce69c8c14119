#include "vmm/kvm/vm.h"

#include <fmt/format.h>
#include <sys/ioctl.h>

namespace minivmm {

Vm::Vm(const KvmSystem& kvm, uint64_t ram_bytes) {
  int fd = ioctl(kvm.fd(), KVM_CREATE_VM, 0);
  if (fd < 0) throw sys_error("KVM_CREATE_VM");
  fd_.reset(fd);

  // Intel needs three pages for a real-mode TSS and one for an identity map
  // table; both go in the 32-bit MMIO hole, where no RAM or device lives.
  constexpr unsigned long kTssAddr = 0xfffbd000;
  if (ioctl(fd, KVM_SET_TSS_ADDR, kTssAddr) < 0) throw sys_error("KVM_SET_TSS_ADDR");
  uint64_t identity = 0xfffbc000;
  if (kvm.check_extension(KVM_CAP_SET_IDENTITY_MAP_ADDR) &&
      ioctl(fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0) {
    throw sys_error("KVM_SET_IDENTITY_MAP_ADDR");
  }

  ram_ = std::make_unique<GuestRamMapping>(ram_bytes);
  // One memory slot per RAM range (memory_layout.h): below the MMIO hole,
  // and the rest from 4 GiB up (api.rst, KVM_SET_USER_MEMORY_REGION).
  const layout::RamRanges ranges = ram_->ranges();
  for (unsigned slot = 0; slot < ranges.count; ++slot) {
    const layout::RamRange& r = ranges.range[slot];
    kvm_userspace_memory_region region{};
    region.slot = slot;
    region.guest_phys_addr = r.gpa;
    region.memory_size = r.size;
    region.userspace_addr = reinterpret_cast<uint64_t>(ram_->data() + r.gpa);
    if (ioctl(fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
      const int err = errno;
      throw sys_error(fmt::format("KVM_SET_USER_MEMORY_REGION slot {}: [{:#x}, {:#x}), {} MiB",
                                  slot, r.gpa, r.gpa + r.size, r.size >> 20),
                      err);
    }
  }

  if (ioctl(fd, KVM_CREATE_IRQCHIP, 0) < 0) throw sys_error("KVM_CREATE_IRQCHIP");
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;
  if (ioctl(fd, KVM_CREATE_PIT2, &pit) < 0) throw sys_error("KVM_CREATE_PIT2");
}

void Vm::set_irq_line(uint32_t gsi, bool level) const {
  kvm_irq_level irq{};
  irq.irq = gsi;
  irq.level = level ? 1 : 0;
  if (ioctl(fd_.get(), KVM_IRQ_LINE, &irq) < 0) {
    throw sys_error("KVM_IRQ_LINE gsi " + std::to_string(gsi));
  }
}

void Vm::add_ioeventfd(uint64_t addr, uint32_t len, uint64_t datamatch, int fd) const {
  kvm_ioeventfd ev{};
  ev.addr = addr;
  ev.len = len;
  ev.datamatch = datamatch;
  ev.fd = fd;
  ev.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
  if (ioctl(fd_.get(), KVM_IOEVENTFD, &ev) < 0) {
    throw sys_error("KVM_IOEVENTFD at " + std::to_string(addr));
  }
}

void Vm::add_irqfd(int fd, uint32_t gsi) const {
  kvm_irqfd irqfd{};
  irqfd.fd = static_cast<uint32_t>(fd);
  irqfd.gsi = gsi;
  if (ioctl(fd_.get(), KVM_IRQFD, &irqfd) < 0) {
    throw sys_error("KVM_IRQFD gsi " + std::to_string(gsi));
  }
}

}  // namespace minivmm
