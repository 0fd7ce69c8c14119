// The one validation step of a VmConfig, after the TOML file and the flags
// have been read into it: every key's rule, each limit from one constant,
// and one reason text whichever way the value came in. Reading a file or a
// flag only converts text to a value (a type, a number, a name of a choice);
// whether the value is allowed is decided here.
#pragma once

#include <cstdint>
#include <string>

#include "common/error.h"
#include "vmm/config/vm_config.h"

namespace minivmm {

// A value its key's rule refuses. what(): the reason alone, e.g.
// "= 8 is out of range [16, 4294967296]"; key(): the config key, e.g.
// "machine.memory_mib" or "disk[2].serial"; "disk" for the number of disks.
class ConfigValueError : public Error {
 public:
  ConfigValueError(std::string key, const std::string& reason)
      : Error(reason), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

// machine.*, log.level, debug.rip_sample_ms, the number of disks and each
// disk's serial and queues. Throws ConfigValueError for the first broken rule.
void validate_config(const VmConfig& config);

// The kernel command line holds one virtio_mmio.device= entry per disk
// (x86_64/virtio_mmio_slots.h), and the kernel cuts the line at `limit`
// characters (more disks would silently vanish from the guest): throws
// ConfigValueError("disk") when `disks` entries do not fit beside the `used`
// characters of the rest, which `rest` describes in the reason.
// validate_config checks the bound with nothing else on the line; the run
// checks the exact room once it knows the kernel and the PVM flags.
void check_disk_count(size_t disks, size_t used, uint64_t limit, const std::string& rest);

// kernel.pvm_workarounds / --pvm-workarounds: "auto", "on" or "off".
PvmWorkarounds pvm_workarounds_value(const std::string& text);

// "<where the value came from>: key '<key>' <reason>": the key as its source
// names it (a --disk flag's own keys without the disk[N]. prefix).
std::string describe(const VmConfig& config, const ConfigValueError& e);

}  // namespace minivmm
