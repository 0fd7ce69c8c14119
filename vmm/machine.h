// Assembles and runs one VM from a validated VmConfig: KVM, RAM, kernel and
// boot structures, devices, vCPU threads; then waits for the first reason to
// stop (guest exit device, reset, fatal exit, SIGINT/SIGTERM) and tears
// everything down in order. Returns minivmm's exit code (vmm/run/exit_codes.h).
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "vmm/config/config.h"
#include "vmm/run/startup_timeline.h"

namespace minivmm {

// A kernel, initrd or disk image that is missing or invalid.
class ImageError : public Error {
 public:
  using Error::Error;
};

// `timeline`: started at process start; each set-up step up to the first
// KVM_RUN is logged on it (debug level).
int run_machine(const VmConfig& config, StartupTimeline& timeline);

// The kernel command line minivmm passes: the configured one plus, when
// `pvm` is set, the flags PVM guests need (nested-kvm.md), and one
// virtio_mmio.device= entry per disk.
std::string build_kernel_cmdline(const std::string& configured, bool pvm,
                                 const std::vector<std::string>& virtio_devices);

}  // namespace minivmm
