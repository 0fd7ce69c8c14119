// The VM's configuration as values: what the TOML file (config.h) and the
// flags (cli.h) are read into, and what validate_config.h judges. Each
// key's limits are the constants here; validate_config applies them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vmm/config/disk_config.h"
#include "vmm/kvm/pvm_quirks.h"

namespace minivmm {

// machine.memory_mib: the upper end is x86-64's 52-bit physical address space
// (Intel SDM vol. 3A 4.1.4), a bound only for the arithmetic; what this host
// and KVM allow is checked at start (vmm/kvm/ram_limits.h).
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
// api.socket: a Unix socket path fits sockaddr_un's 108-byte sun_path with
// its terminating NUL (unix(7)).
inline constexpr size_t kMaxApiSocketPathBytes = 107;
// log.level: spdlog's level names.
inline constexpr const char* kLogLevels = "trace, debug, info, warn, error, critical, off";
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
  // [api]
  std::string api_socket;  // the control API's Unix socket (vmm/api/); empty: none
  // [[disk]]
  std::vector<DiskConfig> disks;
  // Keyed "machine.vcpus", "disk[2]" (a whole disk), "disk[2].queues", "disk"
  // (the array or the --disk flags).
  std::map<std::string, ValueSource> sources;
};

}  // namespace minivmm
