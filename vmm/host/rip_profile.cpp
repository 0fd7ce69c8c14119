#include "vmm/host/rip_profile.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <unordered_map>

namespace minivmm {
namespace {

// System.map lines: "<hex address> <type> <name>"; text symbols only.
std::map<uint64_t, std::string> parse_system_map(const std::string& text) {
  std::map<uint64_t, std::string> symbols;
  std::istringstream in(text);
  std::string addr, type, name;
  while (in >> addr >> type >> name) {
    if (type != "t" && type != "T") continue;
    symbols[std::stoull(addr, nullptr, 16)] = name;
  }
  return symbols;
}

}  // namespace

std::vector<std::pair<std::string, uint64_t>> aggregate_rip_samples(
    const std::map<uint64_t, uint64_t>& samples, const std::string& system_map_text) {
  const auto symbols = parse_system_map(system_map_text);
  std::unordered_map<std::string, uint64_t> by_symbol;
  for (const auto& [rip, hits] : samples) {
    auto it = symbols.upper_bound(rip);
    std::string name;
    if (it != symbols.begin()) {
      name = std::prev(it)->second;
    } else {
      std::ostringstream s;
      s << "0x" << std::hex << rip;
      name = s.str();
    }
    by_symbol[name] += hits;
  }
  std::vector<std::pair<std::string, uint64_t>> out(by_symbol.begin(), by_symbol.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  return out;
}

std::string read_system_map(const std::string& path) {
  if (path.empty()) return {};
  std::ifstream in(path);
  if (!in) {
    spdlog::warn("cannot read System.map '{}': profile shows raw RIPs", path);
    return {};
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

void print_rip_profile(const std::map<uint64_t, uint64_t>& samples, const std::string& text) {
  uint64_t total = 0;
  for (const auto& [rip, hits] : samples) total += hits;
  const auto profile = aggregate_rip_samples(samples, text);
  spdlog::info("RIP profile of vCPU 0: {} samples", total);
  for (size_t i = 0; i < profile.size() && i < 30; ++i) {
    const double share =
        static_cast<double>(profile[i].second) / static_cast<double>(total ? total : 1);
    spdlog::info("  {:6.2f}%  {:6}  {}", 100.0 * share, profile[i].second, profile[i].first);
  }
}

}  // namespace minivmm
