#include "vmm/kvm/kvm_system.h"

#include "vmm/kvm/kvm_abi.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

namespace minivmm {

KvmSystem KvmSystem::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string hint;
    if (err == ENOENT) {
      hint =
          "the KVM module is not loaded (modprobe kvm_intel / kvm_amd), or this host has no "
          "virtualization support";
    } else if (err == EACCES || err == EPERM) {
      hint = "run as root or add your user to the 'kvm' group (and log in again)";
    } else if (err == ENODEV || err == ENXIO) {
      hint =
          "the device exists but no KVM driver binds it (a PVM guest kernel says "
          "'kvm-pvm: this kernel is itself a kvm-pvm guest'; docs/nested-kvm.md)";
    } else {
      hint = "check that KVM works on this host";
    }
    // Without a usable KVM the project's sandbox still runs the VMM (docs/nested-kvm.md).
    hint += "; to run without it: scripts/nested-kvm.sh -- minivmm ARGS... (a nested-KVM sandbox)";
    throw KvmUnavailable("cannot open " + path + ": " + std::strerror(err) + " — " + hint);
  }
  KvmSystem kvm{UniqueFd(fd)};
  const int version = ioctl(fd, KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    throw KvmUnavailable(
        path + ": KVM API version " +
        (version < 0 ? std::string("unreadable (not a KVM device?)") : std::to_string(version)) +
        ", minivmm needs " + std::to_string(KVM_API_VERSION));
  }
  return kvm;
}

int KvmSystem::check_extension(long cap) const {
  const int r = ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
  return r < 0 ? 0 : r;
}

void KvmSystem::require_capabilities(unsigned vcpus) const {
  struct Need {
    long cap;
    const char* name;
    const char* why;
  };
  static constexpr Need needs[] = {
      {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM"},
      {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "in-kernel PIC/IOAPIC/LAPIC"},
      {KVM_CAP_PIT2, "KVM_CAP_PIT2", "in-kernel PIT timer"},
      {KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "virtio interrupts from the device thread"},
      {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "virtio queue notifications"},
      {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "KVM_GET_SUPPORTED_CPUID"},
      {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "x86 TSS placement"},
      {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs on exit/signals"},
  };
  std::ostringstream missing;
  for (const Need& n : needs) {
    if (!check_extension(n.cap)) missing << "\n  " << n.name << " (needed for " << n.why << ")";
  }
  // KVM_CAP_MAX_VCPUS is the hard limit; KVM_CAP_NR_VCPUS only the number
  // KVM recommends (Documentation/virt/kvm/api.rst, KVM_CREATE_VCPU).
  const int recommended = check_extension(KVM_CAP_NR_VCPUS);
  const int max_vcpus = std::max(check_extension(KVM_CAP_MAX_VCPUS), recommended);
  if (max_vcpus > 0 && vcpus > static_cast<unsigned>(max_vcpus)) {
    missing << "\n  " << vcpus << " vCPUs requested but KVM_CAP_MAX_VCPUS is " << max_vcpus
            << " (lower machine.vcpus)";
  } else if (recommended > 0 && vcpus > static_cast<unsigned>(recommended)) {
    spdlog::warn(
        "{} vCPUs is more than KVM_CAP_NR_VCPUS ({}), the number KVM recommends "
        "(usually the host's CPUs): the vCPUs will share host CPUs",
        vcpus, recommended);
  }
  if (!missing.str().empty()) {
    throw KvmUnavailable(
        "/dev/kvm lacks what minivmm needs:" + missing.str() +
        "\n  (a newer host kernel or a KVM with hardware virtualization is required)");
  }
}

size_t KvmSystem::vcpu_mmap_size() const {
  const int r = ioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (r <= 0) throw sys_error("KVM_GET_VCPU_MMAP_SIZE");
  return static_cast<size_t>(r);
}

std::vector<kvm_cpuid_entry2> KvmSystem::supported_cpuid() const {
  for (uint32_t n = 128; n <= 4096; n *= 2) {
    kvm_abi::VarArray<kvm_cpuid_entry2> cpuid(n);
    if (ioctl(fd_.get(), kvm_abi::kGetSupportedCpuid, cpuid.arg()) == 0) {
      return std::vector<kvm_cpuid_entry2>(cpuid.entries(),
                                           cpuid.entries() + cpuid.header()->count);
    }
    if (errno != E2BIG) throw sys_error("KVM_GET_SUPPORTED_CPUID");
  }
  throw Error("KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
}

}  // namespace minivmm
