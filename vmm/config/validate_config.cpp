#include "vmm/config/validate_config.h"

#include <fmt/format.h>

#include <set>

#include "devices/virtio_blk/virtio_blk_options.h"
#include "vmm/x86_64/boot_params.h"
#include "vmm/x86_64/mptable.h"
#include "vmm/x86_64/virtio_mmio_slots.h"

namespace minivmm {
namespace {

namespace blk = virtio::blk;

static_assert(kMaxVcpus == kMpMaxCpus);

void check_range(const std::string& key, uint64_t value, uint64_t min, uint64_t max) {
  if (value < min || value > max) {
    throw ConfigValueError(key, fmt::format("= {} is out of range [{}, {}]", value, min, max));
  }
}

void check_log_level(const std::string& level) {
  static const std::set<std::string> levels = {"trace", "debug",    "info", "warn",
                                               "error", "critical", "off"};
  if (!levels.count(level)) {
    throw ConfigValueError("log.level",
                           fmt::format("= \"{}\" must be one of: {}", level, kLogLevels));
  }
}

// A disk's own rules, against the device's limits (virtio_blk_options.h).
void check_disk(const DiskConfig& d, const std::string& key) {
  if (d.id.size() > blk::kMaxIdBytes) {
    throw ConfigValueError(key + ".serial",
                           fmt::format("is longer than {} bytes (virtio-blk ID size)",
                                       blk::kMaxIdBytes));
  }
  check_range(key + ".queues", d.queues, 1, blk::kMaxQueues);
}

// The source of `key`, or of the disk it belongs to ("disk[2]" for
// "disk[2].queues" given in a --disk flag).
const ValueSource* source_of(const VmConfig& config, const std::string& key) {
  if (const auto it = config.sources.find(key); it != config.sources.end()) return &it->second;
  if (const size_t dot = key.find('.'); dot != std::string::npos && key.rfind("disk[", 0) == 0) {
    if (const auto it = config.sources.find(key.substr(0, dot)); it != config.sources.end()) {
      return &it->second;
    }
  }
  return nullptr;
}

}  // namespace

void check_disk_count(size_t disks, size_t used, uint64_t limit, const std::string& rest) {
  const size_t fit = virtio_devices_that_fit(used, limit);
  if (disks <= fit) return;
  throw ConfigValueError(
      "disk", fmt::format("{} disks do not fit the kernel command line: each is announced to the "
                          "guest as a 'virtio_mmio.device=4K@0x...:IRQ' entry (about 36 "
                          "characters) and the kernel keeps at most {} characters (x86 "
                          "COMMAND_LINE_SIZE {}); {}, leaving room for at most {} disks",
                          disks, limit, limit + 1, rest, fit));
}

void validate_config(const VmConfig& config) {
  check_range("machine.memory_mib", config.memory_mib, kMinMemoryMib, kMaxMemoryMib);
  check_range("machine.vcpus", config.vcpus, 1, kMaxVcpus);
  check_range("machine.io_poll_us", config.io_poll_us, 0, kMaxIoPollUs);
  check_range("debug.rip_sample_ms", config.rip_sample_ms, 0, kMaxRipSampleMs);
  check_log_level(config.log_level);
  if (config.api_socket.size() > kMaxApiSocketPathBytes) {
    throw ConfigValueError("api.socket",
                           fmt::format("= \"{}\" is {} bytes long; a Unix socket path holds at "
                                       "most {} (sun_path, unix(7))",
                                       config.api_socket, config.api_socket.size(),
                                       kMaxApiSocketPathBytes));
  }
  check_disk_count(config.disks.size(), 0, kVmlinuxCommandLineSize - 1,
                   "that is with nothing else on the line");
  for (size_t i = 0; i < config.disks.size(); ++i) {
    check_disk(config.disks[i], "disk[" + std::to_string(i) + "]");
  }
}

PvmWorkarounds pvm_workarounds_value(const std::string& text) {
  if (const auto w = parse_pvm_workarounds(text)) return *w;
  throw ConfigValueError("kernel.pvm_workarounds",
                         "= \"" + text + "\" must be one of: auto, on, off");
}

std::string describe(const VmConfig& config, const ConfigValueError& e) {
  const ValueSource* source = source_of(config, e.key());
  std::string key = e.key();
  if (source && source->flag && key.rfind("disk[", 0) == 0 && key.find('.') != std::string::npos) {
    key = key.substr(key.find('.') + 1);  // --disk PATH,serial=...: the flag's own key
  }
  const std::string where = source ? source->where : "(default)";
  if (key == "disk") return where + ": " + e.what();  // the count: the reason names the disks
  return where + ": key '" + key + "' " + e.what();
}

}  // namespace minivmm
