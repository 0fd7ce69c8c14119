#include "vmm/config/cli.h"

#include "vmm/config/validate_config.h"

#include <charconv>
#include <limits>
#include <sstream>

namespace minivmm {
namespace {

// A number that fits T; whether it is allowed is validate_config's.
template <typename T>
T parse_number(const std::string& flag, const std::string& text) {
  T v{};
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) {
    throw UsageError(flag + ": '" + text + "' is not an integer in [0, " +
                     std::to_string(std::numeric_limits<T>::max()) + "]");
  }
  return v;
}

PvmWorkarounds parse_pvm(const std::string& v) {
  try {
    return pvm_workarounds_value(v);
  } catch (const ConfigValueError& e) {
    throw UsageError("--pvm-workarounds: key '" + e.key() + "' " + e.what());
  }
}

// What each flag that stands for a config key records as its source.
void note_flag(VmConfig& c, const std::string& key, const std::string& flag) {
  c.sources[key] = {flag, true};
}

}  // namespace

std::string usage_text() {
  return R"(usage: minivmm [--config FILE] [options]

Boots a Linux guest on KVM with virtio-blk disks. Flags override the keys of
the TOML config file (see configs/default.toml and README.md).

  -c, --config FILE         TOML configuration
      --kernel PATH         kernel image: vmlinux (ELF) or bzImage   [kernel.path]
      --initrd PATH         initial ramdisk                          [kernel.initrd]
      --cmdline STRING      kernel command line (replaces)           [kernel.cmdline]
      --append STRING       appended to the kernel command line
      --memory MIB          guest RAM in MiB, 16..what the host and KVM allow
                            (above 3 GiB it continues at 4 GiB)      [machine.memory_mib]
      --vcpus N             number of vCPUs, 1..min(254, KVM_CAP_MAX_VCPUS) [machine.vcpus]
      --disk SPEC           add a disk (repeatable; about 56, as many as the kernel
                            command line holds): PATH[,KEY=VALUE]... with the keys of a
                            [[disk]] table: cache=MODE, read_only=true|false|1|0 (or ro),
                            serial=ID (virtio-blk ID, up to 20 bytes), queues=N (1..64),
                            io_engine=auto|io_uring|sync, write_log=FILE (power-loss log)
                            MODE: writeback (default), none, writethrough, directsync, unsafe
      --serial-log FILE     guest console to FILE instead of stdout  [serial.log_file]
      --no-stdin            do not feed the terminal to the guest    [serial.stdin]
      --log-level LEVEL     trace, debug, info, warn, error, critical, off [log.level]
      --pvm-workarounds M   auto, on, off: PVM guest flags and int3  [kernel.pvm_workarounds]
      --api-sock PATH       serve the control API (docs/api.md) on this
                            Unix socket, created mode 0600           [api.socket]
      --kvm PATH            the KVM device (default /dev/kvm)
      --no-seccomp          run without the seccomp sandbox (debugging)  [debug.seccomp]
      --sample-rip MS       sample vCPU 0's RIP every MS ms; print a profile at exit
      --system-map FILE     symbolize RIP samples with the guest's System.map
  -h, --help                this text
      --version             print the version

Exit codes:
  0      guest powered off/rebooted, reported status 0, SIGINT/SIGTERM, or
         the console's reader went away (EPIPE on stdout)
  N      the guest wrote N to the exit device (32-bit write to port 0x4f0; N & 0xff)
  64     bad command line (unknown flag, missing or unreadable value)
  65     bad configuration value (file or flag), incl. a log file naming
         another file of the run
  66     kernel/initrd/disk image missing or invalid
  69     /dev/kvm unavailable or lacking a capability
  70     internal error            75  unhandled VM exit (incl. emulation failure)
  76     guest triple fault
  77     a second SIGINT/SIGTERM forced the exit before the graceful stop ended
  78     seccomp: a thread made a forbidden syscall (stderr names it)
)";
}

CliOptions parse_cli(int argc, char** argv) {
  CliOptions o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_inline = false;
    if (arg.rfind("--", 0) == 0) {
      if (auto eq = arg.find('='); eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_inline = true;
      }
    }
    auto next = [&]() -> std::string {
      if (has_inline) return value;
      if (i + 1 >= argc) throw UsageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") o.help = true;
    else if (arg == "--version") o.version = true;
    else if (arg == "-c" || arg == "--config") o.config_path = next();
    else if (arg == "--kernel") o.kernel = next();
    else if (arg == "--kvm") o.kvm_device = next();
    else if (arg == "--initrd") o.initrd = next();
    else if (arg == "--cmdline") o.cmdline = next();
    else if (arg == "--append") o.append = next();
    else if (arg == "--memory") o.memory_mib = parse_number<uint64_t>(arg, next());
    else if (arg == "--vcpus") o.vcpus = parse_number<uint32_t>(arg, next());
    else if (arg == "--disk") o.disks.push_back(next());
    else if (arg == "--serial-log") o.serial_log = next();
    else if (arg == "--no-stdin") o.no_stdin = true;
    else if (arg == "--no-seccomp") o.no_seccomp = true;
    else if (arg == "--log-level") o.log_level = next();
    else if (arg == "--pvm-workarounds") o.pvm = parse_pvm(next());
    else if (arg == "--sample-rip") o.rip_sample_ms = parse_number<uint32_t>(arg, next());
    else if (arg == "--system-map") o.system_map = next();
    else if (arg == "--api-sock") o.api_socket = next();
    else throw UsageError("unknown option '" + arg + "' (see --help)");
  }
  return o;
}

DiskConfig parse_disk_flag(const std::string& spec) {
  try {
    return parse_disk_config(split_disk_flag(spec), DiskSource::kFlag, expand_path);
  } catch (const DiskSettingError& e) {
    if (e.key().empty()) throw UsageError("--disk " + spec + ": " + e.what());
    throw UsageError("--disk " + spec + ": key '" + e.key() + "' " + e.what());
  }
}

VmConfig build_config(const CliOptions& cli) {
  VmConfig c = cli.config_path.empty() ? VmConfig{} : load_config_file(cli.config_path);
  if (cli.kvm_device) c.kvm_device = *cli.kvm_device;
  if (cli.kernel) c.kernel = expand_path(*cli.kernel);
  if (cli.initrd) c.initrd = expand_path(*cli.initrd);
  if (cli.cmdline) c.cmdline = *cli.cmdline;
  if (cli.append) c.cmdline += " " + *cli.append;
  if (cli.memory_mib) {
    c.memory_mib = *cli.memory_mib;
    note_flag(c, "machine.memory_mib", "--memory");
  }
  if (cli.vcpus) {
    c.vcpus = *cli.vcpus;
    note_flag(c, "machine.vcpus", "--vcpus");
  }
  if (cli.serial_log) c.serial_log = *cli.serial_log;
  if (cli.no_stdin) c.serial_stdin = false;
  if (cli.no_seccomp) c.seccomp = false;
  if (cli.log_level) {
    c.log_level = *cli.log_level;
    note_flag(c, "log.level", "--log-level");
  }
  if (cli.pvm) c.pvm_workarounds = *cli.pvm;
  if (cli.rip_sample_ms) {
    c.rip_sample_ms = *cli.rip_sample_ms;
    note_flag(c, "debug.rip_sample_ms", "--sample-rip");
  }
  if (cli.system_map) c.system_map = expand_path(*cli.system_map);
  if (cli.api_socket) {
    c.api_socket = expand_path(*cli.api_socket);
    note_flag(c, "api.socket", "--api-sock");
  }
  for (const auto& spec : cli.disks) {
    note_flag(c, "disk[" + std::to_string(c.disks.size()) + "]", "--disk " + spec);
    c.disks.push_back(parse_disk_flag(spec));
  }
  if (!cli.disks.empty()) note_flag(c, "disk", "--disk");
  if (c.kernel.empty()) throw UsageError("no kernel: give --kernel or kernel.path in the config");
  // The one validation step, over the file's values and the flags' together.
  try {
    validate_config(c);
  } catch (const ConfigValueError& e) {
    throw ConfigError(describe(c, e));  // a refused value: exit code 65 from a flag as from a file
  }
  return c;
}

}  // namespace minivmm
