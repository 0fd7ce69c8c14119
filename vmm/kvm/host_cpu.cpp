#include "vmm/kvm/host_cpu.h"

#include <asm/prctl.h>
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace minivmm {
namespace {

constexpr uint64_t kAmxComponents = (uint64_t{1} << 17) | (uint64_t{1} << 18);

}  // namespace

uint64_t guest_xstate_permission() {
  uint64_t mask = 0;
  if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_GUEST_PERM, &mask) != 0) return ~kAmxComponents;
  return mask;
}

std::string host_hypervisor_signature() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 31))) return "";
  __cpuid(0x40000000, eax, ebx, ecx, edx);
  char sig[13] = {};
  std::memcpy(sig, &ebx, 4);
  std::memcpy(sig + 4, &ecx, 4);
  std::memcpy(sig + 8, &edx, 4);
  return sig;
}

bool host_tracks_guest_xsetbv(const std::string& hypervisor_signature) {
  return hypervisor_signature != "TCGTCGTCGTCG";
}

}  // namespace minivmm
