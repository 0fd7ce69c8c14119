// A disk's configuration and counters as JSON (GET /drives, /drives/{id}).
#pragma once

#include <nlohmann/json.hpp>

#include "vmm/api/vm_control.h"

namespace minivmm::api {

nlohmann::json drive_json(const DriveReport& drive);

}  // namespace minivmm::api
