// Variable-length KVM ioctl arguments with their C layout.
//
// <linux/kvm.h> declares kvm_cpuid2 and kvm_msrs with __DECLARE_FLEX_ARRAY,
// which in C++ adds an empty struct: sizeof(kvm_cpuid2) becomes 12 instead of
// 8, the entries move, and KVM_GET_SUPPORTED_CPUID/KVM_SET_CPUID2/
// KVM_SET_MSRS encode that wrong size in their ioctl numbers (KVM answers
// EINVAL). So minivmm builds these arguments itself: an 8-byte header
// followed by the entries, exactly as the C ABI lays them out.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace minivmm::kvm_abi {

struct VarHeader {
  uint32_t count;  // nent / nmsrs
  uint32_t padding;
};
static_assert(sizeof(VarHeader) == 8);
static_assert(sizeof(kvm_cpuid_entry2) == 40);
static_assert(sizeof(kvm_msr_entry) == 16);

inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, VarHeader);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, VarHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, VarHeader);

// A header plus `count` entries of T in one buffer, 8-byte aligned.
template <typename T>
class VarArray {
 public:
  explicit VarArray(uint32_t count) : words_((sizeof(VarHeader) + count * sizeof(T) + 7) / 8, 0) {
    header()->count = count;
  }
  VarHeader* header() { return reinterpret_cast<VarHeader*>(words_.data()); }
  T* entries() { return reinterpret_cast<T*>(words_.data() + 1); }
  void* arg() { return words_.data(); }

 private:
  std::vector<uint64_t> words_;
};

}  // namespace minivmm::kvm_abi
