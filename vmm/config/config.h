// The VM's configuration: a TOML file (toml++) with command-line overrides.
// Every key is validated; an unknown key, a wrong type or a bad value is a
// ConfigError naming the key and its line.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "storage/disk.h"
#include "vmm/config/disk_config.h"
#include "vmm/kvm/pvm_quirks.h"
#include "vmm/run/config_error.h"

namespace minivmm {

// machine.memory_mib: the upper end is x86-64's 52-bit physical address space
// (Intel SDM vol. 3A 4.1.4), a bound only for the arithmetic; what this host
// and KVM allow is checked at start (vmm/ram_limits.h).
inline constexpr uint64_t kMinMemoryMib = 16;
inline constexpr uint64_t kMaxMemoryMib = (1ull << 52) >> 20;
// machine.vcpus: the MP table's 8-bit APIC ids (mptable.h kMpMaxCpus); what
// KVM allows (KVM_CAP_MAX_VCPUS) is checked at start.
inline constexpr uint32_t kMaxVcpus = 254;
// machine.io_poll_us: how long the I/O thread may poll the virtqueues and
// the disks' completions before it sleeps (EventLoop, common/poll_window.h);
// 0 turns polling off. A millisecond bounds the CPU a poll can burn.
inline constexpr uint32_t kDefaultIoPollUs = 32;
inline constexpr uint32_t kMaxIoPollUs = 1000;
// debug.rip_sample_ms: 0 is off; ten seconds between samples is as rare as
// a profile of a boot is still worth taking.
inline constexpr uint32_t kMaxRipSampleMs = 10000;
// log.level: spdlog's level names.
inline constexpr const char* kLogLevels = "trace, debug, info, warn, error, critical, off";
// A config file is a regular file of at most 1 MiB: a hand-written one is a
// few KiB, and a wrong path (/dev/zero, a disk image) must not be read
// whole into memory.
inline constexpr uint64_t kMaxConfigFileBytes = 1ull << 20;

// Where a key's value came from, for error messages: "file.toml:3" or a
// flag ("--memory", "--disk PATH,..."). A key absent from `sources` has its
// default.
struct ValueSource {
  std::string where;
  bool flag = false;
};

struct VmConfig {
  // [machine]
  uint64_t memory_mib = 64;
  uint32_t vcpus = 1;
  uint32_t io_poll_us = kDefaultIoPollUs;
  // [kernel]
  std::string kernel;
  std::string initrd;
  std::string cmdline = "console=ttyS0";
  PvmWorkarounds pvm_workarounds = PvmWorkarounds::Auto;
  // [serial]
  std::string serial_log;    // empty: guest console goes to stdout
  bool serial_stdin = true;  // feed the terminal's input to the UART
  // [log]
  std::string log_level = "info";
  std::string kvm_device = "/dev/kvm";  // --kvm only (tests, unusual hosts)
  // [debug]
  uint32_t rip_sample_ms = 0;  // 0: off
  std::string system_map;      // for symbolizing RIP samples
  bool seccomp = true;         // the per-thread seccomp sandbox (vmm/host/seccomp_filter.h)
  // [[disk]]
  std::vector<DiskConfig> disks;
  // Keyed "machine.vcpus", "disk[2]" (a whole disk), "disk[2].queues", "disk"
  // (the array or the --disk flags).
  std::map<std::string, ValueSource> sources;
};

// Expands ${VAR} from the environment; ${MINIVMM_CACHE} defaults to
// $XDG_CACHE_HOME/minivmm or ~/.cache/minivmm; a leading ~ is $HOME.
std::string expand_path(const std::string& value);

// Parses TOML text and validates it (validate_config.h); `source_name`
// appears in error messages.
VmConfig parse_config(const std::string& toml_text, const std::string& source_name);
// Throws ConfigError if `path` is not a regular file of at most
// kMaxConfigFileBytes, cannot be read, or is not a valid config.
VmConfig load_config_file(const std::string& path);

}  // namespace minivmm
