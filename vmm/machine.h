// Assembles and runs one VM from a validated VmConfig: KVM, RAM, kernel and
// boot structures, devices, vCPU threads; then waits for the first reason to
// stop (guest exit device, reset, fatal exit, SIGINT/SIGTERM) and tears
// everything down in order. Returns minivmm's exit code (vmm/run/exit_codes.h).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/error.h"
#include "vmm/config/config.h"

namespace minivmm {

// A kernel, initrd or disk image that is missing or invalid.
class ImageError : public Error {
 public:
  using Error::Error;
};

// `started`: when the process started, for the time-to-first-KVM_RUN log line.
int run_machine(const VmConfig& config, std::chrono::steady_clock::time_point started);

// The kernel command line minivmm passes: the configured one plus, when
// `pvm` is set, the flags PVM guests need (nested-kvm.md), and one
// virtio_mmio.device= entry per disk.
std::string build_kernel_cmdline(const std::string& configured, bool pvm,
                                 const std::vector<std::string>& virtio_devices);

}  // namespace minivmm
