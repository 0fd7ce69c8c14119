// What the machine minivmm runs on says about its own CPU that shapes the
// guest's CPUID (cpuid.h).
#pragma once

#include <cstdint>
#include <string>

namespace minivmm {

// The XSAVE components this process may give a guest:
// arch_prctl(ARCH_GET_XCOMP_GUEST_PERM) (Linux 5.17+,
// Documentation/arch/x86/xstate.rst). Dynamic components (AMX tile data) need
// ARCH_REQ_XCOMP_GUEST_PERM first; minivmm does not ask, so a KVM that offers
// them without the permission does not get them into KVM_SET_CPUID2. On a
// kernel without the call (no dynamic components exist there): everything
// but the AMX components.
uint64_t guest_xstate_permission();

// The host's hypervisor signature, CPUID 0x40000000 EBX:ECX:EDX when CPUID.1
// says it runs under one ("KVMKVMKVM", "TCGTCGTCGTCG", ...); empty on bare
// metal.
std::string host_hypervisor_signature();

// Whether the host's XSETBV reaches KVM when a guest executes it. QEMU's
// software emulator (signature "TCGTCGTCGTCG", the nested sandbox of
// docs/nested-kvm.md) does not implement the SVM XSETBV intercept (its
// target/i386/svm.h stops at SVM_EXIT_MWAIT, 0x8b; XSETBV is 0x8d): the
// guest's XSETBV changes XCR0 without KVM seeing it, so KVM keeps answering
// CPUID.0xD.0:EBX for XCR0 = x87 (576 bytes) and restores XCR0 = x87 at
// every VM entry. A Linux guest then fails its XSAVE size check ("XSAVE
// consistency problem: size 2696 != kernel_size 576") and its xstate would
// not survive an exit: such a guest must not use XSAVE.
bool host_tracks_guest_xsetbv(const std::string& hypervisor_signature);

}  // namespace minivmm
