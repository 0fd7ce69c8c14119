// The last exits of one vCPU, kept for the report of a fatal exit. On AMD
// (kvm_amd) the registers read at KVM_EXIT_SHUTDOWN are already the INIT state
// (RIP 0xfff0: arch/x86/kvm/svm/svm.c shutdown_interception() resets the
// VMCB), so what the guest did just before is the only evidence left.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>
#include <string>

namespace minivmm {

class ExitHistory {
 public:
  static constexpr size_t kSize = 16;

  // Called after every KVM_RUN that returned an exit; reads only kvm_run (no
  // ioctl), so it costs a few stores.
  void record(const kvm_run& run);
  // "N exits; last: KVM_EXIT_IO out 0x3f8, KVM_EXIT_MMIO write 0xd0000050, ..."
  // oldest first.
  std::string describe() const;
  uint64_t count() const { return count_; }

 private:
  struct Entry {
    uint32_t reason = 0;
    uint64_t where = 0;  // I/O port or MMIO address
    bool write = false;
  };
  std::array<Entry, kSize> entries_{};
  uint64_t count_ = 0;
};

// KVM_EXIT_* name of an exit reason ("KVM_EXIT_IO").
const char* exit_reason_name(uint32_t reason);

}  // namespace minivmm
