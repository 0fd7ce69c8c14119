// The VM's configuration: a TOML file (toml++) with command-line overrides.
// Every key is validated; an unknown key, a wrong type or a bad value is a
// ConfigError naming the key and its line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "storage/disk.h"

namespace minivmm {

class ConfigError : public Error {
 public:
  using Error::Error;
};

enum class PvmWorkarounds { Auto, On, Off };

struct DiskConfig {
  std::string path;
  storage::CacheMode cache = storage::CacheMode::Writeback;
  bool read_only = false;
  std::string serial;  // virtio-blk GET_ID string, at most 20 bytes
  uint32_t queues = 1;
  storage::IoEngineKind io_engine = storage::IoEngineKind::Auto;
  std::string write_log;  // power-loss simulation log (storage/write_log.h); empty = off
};

struct VmConfig {
  // [machine]
  uint64_t memory_mib = 64;
  uint32_t vcpus = 1;
  // [kernel]
  std::string kernel;
  std::string initrd;
  std::string cmdline = "console=ttyS0";
  PvmWorkarounds pvm_workarounds = PvmWorkarounds::Auto;
  // [serial]
  std::string serial_log;      // empty: guest console goes to stdout
  bool serial_stdin = true;    // feed the terminal's input to the UART
  // [log]
  std::string log_level = "info";
  std::string kvm_device = "/dev/kvm";  // --kvm only (tests, unusual hosts)
  // [debug]
  uint32_t rip_sample_ms = 0;  // 0: off
  std::string system_map;      // for symbolizing RIP samples
  bool seccomp = true;         // the per-thread seccomp sandbox (vmm/seccomp_filter.h)
  // [[disk]]
  std::vector<DiskConfig> disks;
};

bool is_log_level(const std::string& level);

// Expands ${VAR} from the environment; ${MINIVMM_CACHE} defaults to
// $XDG_CACHE_HOME/minivmm or ~/.cache/minivmm; a leading ~ is $HOME.
std::string expand_path(const std::string& value);

// Parses TOML text; `source_name` appears in error messages.
VmConfig parse_config(const std::string& toml_text, const std::string& source_name);
VmConfig load_config_file(const std::string& path);

}  // namespace minivmm
