// Every workaround minivmm applies for PVM, a software nested-virtualization
// /dev/kvm (kvm_pvm; docs/nested-kvm.md), in one place:
//  - guest kernel flags that avoid instructions KVM's emulator cannot execute;
//  - hiding the KVM paravirt features that work by hypercall (CPUID);
//  - emulating int3, which PVM's emulator cannot execute, by injecting #BP.
// `[kernel] pvm_workarounds` / `--pvm-workarounds` chooses auto, on or off.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace minivmm {

enum class PvmWorkarounds { Auto, On, Off };

// "auto", "on" or "off"; nullopt for anything else.
std::optional<PvmWorkarounds> parse_pvm_workarounds(const std::string& text);

// True when /dev/kvm is PVM: kvm_pvm is loaded, or the CPU has no VMX/SVM.
bool host_is_pvm();

// Whether the workarounds apply: On, or Auto on a PVM host.
bool pvm_workarounds_active(PvmWorkarounds setting);

// Appends the flags a Linux 6.1 guest needs on PVM to `cmdline`, each unless
// the command line already sets its key.
void append_pvm_guest_flags(std::string& cmdline);

// Clears the hypercall-based paravirt features (PV IPIs, TLB flush, sched
// yield, spinlock unhalt) in a KVM_CPUID_FEATURES (0x40000001) entry: on PVM
// an AP spinning in kvm_hypercall4(KVM_HC_SEND_IPI) never brought the other
// CPU up.
void hide_pv_hypercall_features(kvm_cpuid_entry2& entry);

// After a KVM_INTERNAL_ERROR_EMULATION exit: when `insn` (the bytes at the
// vCPU's RIP, from `regs`) is int3, delivers the trap it would have raised
// (#BP with RIP past the instruction) on `vcpu_fd` and returns true.
bool emulate_int3(int vcpu_fd, kvm_regs regs, const std::vector<uint8_t>& insn);

}  // namespace minivmm
