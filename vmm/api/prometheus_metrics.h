// GET /metrics: the VM's state and every disk's counters in the Prometheus
// text exposition format 0.0.4 (# HELP and # TYPE per family, names
// minivmm_..., base units: seconds and bytes).
#pragma once

#include <string>

#include "vmm/api/vm_control.h"

namespace minivmm::api {

std::string prometheus_metrics(const VmControl& vm);

}  // namespace minivmm::api
