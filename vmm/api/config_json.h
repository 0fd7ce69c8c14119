// The effective VmConfig as JSON (GET /vm/config): Firecracker's section
// names where it has the same concept (boot-source, machine-config,
// drives), minivmm's own keys beside them.
#pragma once

#include <nlohmann/json.hpp>

#include "vmm/config/vm_config.h"

namespace minivmm::api {

nlohmann::json config_json(const VmConfig& config);

// The io_engine key's value: "auto", "io_uring", "sync".
const char* io_engine_name(storage::IoEngineKind kind);

}  // namespace minivmm::api
