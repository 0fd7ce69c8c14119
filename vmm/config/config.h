// The VM's configuration file: TOML (toml++) read into a VmConfig
// (vm_config.h), which command-line flags then override (cli.h).
// An unknown key, a wrong type or a value validate_config refuses is a
// ConfigError naming the key and its line.
#pragma once

#include <cstdint>
#include <string>

#include "common/error.h"
#include "vmm/config/vm_config.h"
#include "vmm/run/config_error.h"

namespace minivmm {

// A config file is a regular file of at most 1 MiB: a hand-written one is a
// few KiB, and a wrong path (/dev/zero, a disk image) must not be read
// whole into memory.
inline constexpr uint64_t kMaxConfigFileBytes = 1ull << 20;

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
