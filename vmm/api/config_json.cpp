#include "vmm/api/config_json.h"

namespace minivmm::api {

const char* io_engine_name(storage::IoEngineKind kind) {
  switch (kind) {
    case storage::IoEngineKind::Auto: return "auto";
    case storage::IoEngineKind::IoUring: return "io_uring";
    case storage::IoEngineKind::Sync: return "sync";
  }
  return "unknown";
}

nlohmann::json config_json(const VmConfig& c) {
  nlohmann::json drives = nlohmann::json::array();
  for (size_t i = 0; i < c.disks.size(); ++i) {
    const DiskConfig& d = c.disks[i];
    drives.push_back({{"drive_id", std::to_string(i)},
                      {"path_on_host", d.path},
                      {"format", storage::to_string(d.format)},
                      {"is_read_only", d.read_only},
                      {"cache_type", storage::to_string(d.cache)},
                      {"io_engine", io_engine_name(d.io_engine)},
                      {"serial", d.id},
                      {"num_queues", d.queues},
                      {"write_log", d.write_log}});
  }
  const char* pvm = c.pvm_workarounds == PvmWorkarounds::On    ? "on"
                    : c.pvm_workarounds == PvmWorkarounds::Off ? "off"
                                                               : "auto";
  return {
      {"boot-source",
       {{"kernel_image_path", c.kernel},
        {"initrd_path", c.initrd},
        {"boot_args", c.cmdline},
        {"pvm_workarounds", pvm}}},
      {"machine-config",
       {{"vcpu_count", c.vcpus}, {"mem_size_mib", c.memory_mib}, {"io_poll_us", c.io_poll_us}}},
      {"drives", drives},
      {"serial", {{"log_file", c.serial_log}, {"stdin", c.serial_stdin}}},
      {"log", {{"level", c.log_level}}},
      {"debug",
       {{"rip_sample_ms", c.rip_sample_ms}, {"system_map", c.system_map}, {"seccomp", c.seccomp}}},
      {"api", {{"socket", c.api_socket}}},
  };
}

}  // namespace minivmm::api
