// One KVM virtual machine: its fd, guest RAM, in-kernel irqchip and PIT, and
// the eventfd plumbing (ioeventfd, irqfd) devices use.
#pragma once

#include <cstdint>
#include <memory>

#include "common/unique_fd.h"
#include "vmm/kvm/guest_ram.h"
#include "vmm/kvm/kvm_system.h"

namespace minivmm {

class Vm {
 public:
  Vm(const KvmSystem& kvm, uint64_t ram_bytes);

  int fd() const { return fd_.get(); }
  GuestMemory memory() const { return ram_->view(); }

  // Level of an irqchip input line (KVM_IRQ_LINE); GSIs 0-15 are ISA IRQs.
  void set_irq_line(uint32_t gsi, bool level) const;
  // A write of `len` bytes (== datamatch) at guest physical `addr` signals `fd`
  // in the kernel, without a VM exit to user space.
  void add_ioeventfd(uint64_t addr, uint32_t len, uint64_t datamatch, int fd) const;
  // Signalling `fd` raises `gsi` (an edge on the IOAPIC/PIC).
  void add_irqfd(int fd, uint32_t gsi) const;

 private:
  UniqueFd fd_;
  std::unique_ptr<GuestRamMapping> ram_;
};

}  // namespace minivmm
