#include "vmm/kvm/pvm_quirks.h"

#include <sys/ioctl.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace minivmm {
namespace {

// Flags a Linux 6.1 guest needs on PVM (docs/nested-kvm.md): avoid
// instructions KVM's emulator cannot execute.
constexpr const char* kPvmGuestFlags[] = {"noxsave",
                                          "clearcpuid=smap,popcnt,fsgsbase,rdpid,pku,umip,cx16"};

}  // namespace

std::optional<PvmWorkarounds> parse_pvm_workarounds(const std::string& text) {
  if (text == "auto") return PvmWorkarounds::Auto;
  if (text == "on") return PvmWorkarounds::On;
  if (text == "off") return PvmWorkarounds::Off;
  return std::nullopt;
}

bool host_is_pvm() {
  if (std::filesystem::exists("/sys/module/kvm_pvm")) return true;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) == 0) {
      return line.find(" vmx") == std::string::npos && line.find(" svm") == std::string::npos;
    }
  }
  return false;
}

bool pvm_workarounds_active(PvmWorkarounds setting) {
  return setting == PvmWorkarounds::On || (setting == PvmWorkarounds::Auto && host_is_pvm());
}

void append_pvm_guest_flags(std::string& cmdline) {
  for (const char* flag : kPvmGuestFlags) {
    const std::string f(flag);
    const std::string key = f.substr(0, f.find('='));
    if (cmdline.find(key) != std::string::npos) continue;
    if (!cmdline.empty()) cmdline += ' ';
    cmdline += f;
  }
}

void hide_pv_hypercall_features(kvm_cpuid_entry2& entry) {
  // KVM_CPUID_FEATURES (Documentation/virt/kvm/x86/cpuid.rst): PV_UNHALT 7,
  // PV_TLB_FLUSH 9, PV_SEND_IPI 11, PV_SCHED_YIELD 13.
  entry.eax &= ~((1u << 7) | (1u << 9) | (1u << 11) | (1u << 13));
}

bool emulate_int3(int vcpu_fd, kvm_regs regs, const std::vector<uint8_t>& insn) {
  if (insn.empty() || insn[0] != 0xcc) return false;
  regs.rip += 1;
  if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0) throw sys_error("KVM_SET_REGS");
  kvm_vcpu_events events{};
  if (ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &events) < 0) throw sys_error("KVM_GET_VCPU_EVENTS");
  events.exception.injected = 1;
  events.exception.nr = 3;
  events.exception.has_error_code = 0;
  if (ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &events) < 0) throw sys_error("KVM_SET_VCPU_EVENTS");
  return true;
}

}  // namespace minivmm
