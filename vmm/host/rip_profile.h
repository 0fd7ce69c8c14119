// Where the guest spends its time: vCPU RIP samples aggregated by function
// using the guest kernel's System.map (nested-kvm.md, "Where boot time goes").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace minivmm {

// (symbol, samples), most samples first. Without a map, symbols are hex RIPs.
std::vector<std::pair<std::string, uint64_t>> aggregate_rip_samples(
    const std::map<uint64_t, uint64_t>& samples, const std::string& system_map_text);

// The System.map's text ("" with a warning when unreadable). Read at set-up:
// the sandboxed teardown may not open files.
std::string read_system_map(const std::string& path);

// Logs the top entries of the profile; `system_map_text` from read_system_map.
void print_rip_profile(const std::map<uint64_t, uint64_t>& samples,
                       const std::string& system_map_text);

}  // namespace minivmm
