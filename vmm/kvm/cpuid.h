// The virtual CPU's CPUID, made consistent per vCPU from what
// KVM_GET_SUPPORTED_CPUID reports. KVM passes most host leaves through, so
// without this a guest would see the host's topology (cache sharing, core
// counts, APIC id widths), the host's PMU and XSAVE layouts that do not match
// what it may enable. A pure function over a plain table, so every rule is
// unit tested without /dev/kvm.
//
// The topology given to the guest: one package, one thread per core, one core
// per vCPU; vCPU i has (x2)APIC id i. References: Intel SDM vol. 2A, CPUID
// (leaves 1, 4, 0xA, 0xB, 0xD, 0x1F); AMD APM vol. 3, appendix E (leaves
// 0x80000001, 0x80000008, 0x8000001D, 0x8000001E); Linux
// Documentation/virt/kvm/x86/cpuid.rst (0x40000000, 0x40000001).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace minivmm {

enum class CpuVendor { kIntel, kAmd, kOther };

// From leaf 0's vendor string ("GenuineIntel"; "AuthenticAMD" and
// "HygonGenuine" follow AMD's topology leaves).
CpuVendor cpuid_vendor(const std::vector<kvm_cpuid_entry2>& table);

struct VcpuCpuidPolicy {
  unsigned vcpu_index = 0;
  unsigned vcpu_count = 1;
  CpuVendor vendor = CpuVendor::kOther;
  // XSAVE state components this process may give a guest
  // (arch_prctl(ARCH_GET_XCOMP_GUEST_PERM)); others are dropped from leaf 0xD.
  uint64_t permitted_xcr0 = ~uint64_t{0};
  // No XSAVE at all: CPUID.1:ECX.XSAVE, the features that need it, and leaf
  // 0xD all cleared, so the guest uses FXSAVE.
  bool hide_xsave = false;
  // PVM: clear the hypercall-based paravirt features in 0x40000001
  // (pvm_quirks.h).
  bool hide_pv_hypercalls = false;
};

// The CPUID of vCPU `policy.vcpu_index` of `policy.vcpu_count`.
std::vector<kvm_cpuid_entry2> normalize_cpuid(std::vector<kvm_cpuid_entry2> table,
                                              const VcpuCpuidPolicy& policy);

// The smallest w with 2^w >= n: the APIC id bits that hold n ids.
unsigned apic_id_width(unsigned n);

// CPUID leaf 0xD's answers for `features` (an XCR0 | IA32_XSS mask) in
// `table`: the XSAVE area size in the standard (uncompacted) format, and in
// the compacted format XSAVEC/XSAVES use.
uint32_t xsave_standard_size(const std::vector<kvm_cpuid_entry2>& table, uint64_t features);
uint32_t xsave_compacted_size(const std::vector<kvm_cpuid_entry2>& table, uint64_t features);

}  // namespace minivmm
