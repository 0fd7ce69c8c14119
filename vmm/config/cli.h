// minivmm's command line: a config file plus flags that override its keys.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "vmm/config/config.h"

namespace minivmm {

class UsageError : public Error {
 public:
  using Error::Error;
};

struct CliOptions {
  bool help = false;
  bool version = false;
  std::string config_path;
  std::optional<std::string> kvm_device;
  std::optional<std::string> kernel, initrd, cmdline, append, serial_log, log_level, system_map,
      api_socket;
  std::optional<uint64_t> memory_mib;
  std::optional<uint32_t> vcpus, rip_sample_ms;
  std::optional<PvmWorkarounds> pvm;
  bool no_stdin = false;
  bool no_seccomp = false;
  std::vector<std::string> disks;  // PATH[,key=value]... (vmm/config/disk_config.h)
};

CliOptions parse_cli(int argc, char** argv);  // throws UsageError
std::string usage_text();
// Loads the config file (if any) and applies the flags on top.
VmConfig build_config(const CliOptions& cli);
DiskConfig parse_disk_flag(const std::string& spec);  // throws UsageError

}  // namespace minivmm
