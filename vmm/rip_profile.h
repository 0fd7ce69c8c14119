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

// Logs the top entries of the profile.
void print_rip_profile(const std::map<uint64_t, uint64_t>& samples, const std::string& system_map);

}  // namespace minivmm
