#include "vmm/kvm/ram_limits.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "vmm/run/config_error.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {
namespace {

constexpr uint32_t kCpuidAddressSizes = 0x80000008;
constexpr unsigned kDefaultPhysAddrBits = 36;
// include/linux/kvm_host.h: KVM_MEM_MAX_NR_PAGES ((1UL << 31) - 1).
constexpr uint64_t kKvmMemMaxNrPages = (1ull << 31) - 1;
constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kHoleSize = layout::kMmioHoleEnd - layout::kMmioHoleStart;

// RAM bytes whose mapping (hole included, memory_layout.h) spans `span` bytes.
uint64_t ram_for_span(uint64_t span) {
  return span > layout::kMmioHoleEnd ? span - kHoleSize : std::min(span, layout::kMmioHoleStart);
}

std::string mib(uint64_t bytes) { return fmt::format("{} MiB", bytes >> 20); }

uint64_t meminfo_bytes(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      std::istringstream fields(line.substr(key.size() + 1));
      uint64_t kib = 0;
      fields >> kib;
      return kib << 10;
    }
  }
  return 0;
}

std::string read_text(const char* path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

HostMemory read_host_memory() {
  HostMemory h;
  const std::string meminfo = read_text("/proc/meminfo");
  h.mem_total = meminfo_bytes(meminfo, "MemTotal");
  h.swap_total = meminfo_bytes(meminfo, "SwapTotal");
  h.commit_limit = meminfo_bytes(meminfo, "CommitLimit");
  h.committed_as = meminfo_bytes(meminfo, "Committed_AS");
  std::istringstream(read_text("/proc/sys/vm/overcommit_memory")) >> h.overcommit_mode;
  rlimit as{};
  if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) {
    h.address_space_limit = as.rlim_cur;
  }
  return h;
}

unsigned guest_phys_addr_bits(const std::vector<kvm_cpuid_entry2>& cpuid) {
  for (const auto& e : cpuid) {
    if (e.function == kCpuidAddressSizes && (e.eax & 0xff) != 0) return e.eax & 0xff;
  }
  return kDefaultPhysAddrBits;
}

std::vector<RamLimit> guest_ram_limits(const HostMemory& host, unsigned phys_addr_bits) {
  std::vector<RamLimit> limits;
  const unsigned bits = std::min(phys_addr_bits, 63u);
  limits.push_back({ram_for_span(1ull << bits),
                    fmt::format("the vCPU's {}-bit guest physical addresses (CPUID 0x80000008) "
                                "end at {:#x}, and RAM above 3 GiB sits 1 GiB higher, past the "
                                "MMIO hole",
                                bits, 1ull << bits)});
  limits.push_back({layout::kMmioHoleStart + kKvmMemMaxNrPages * kPageSize,
                    "KVM's largest memory slot (KVM_MEM_MAX_NR_PAGES, 2^31 - 1 pages) holds the "
                    "RAM above 4 GiB"});
  if (host.overcommit_mode == 0 && host.mem_total) {
    limits.push_back({host.mem_total + host.swap_total,
                      fmt::format("the host has {} of RAM and {} of swap, and with "
                                  "vm.overcommit_memory=0 a larger guest could never be backed "
                                  "(guest RAM is allocated lazily, but must fit there; "
                                  "vm.overcommit_memory=1 lifts this)",
                                  mib(host.mem_total), mib(host.swap_total))});
  }
  if (host.overcommit_mode == 2) {
    const uint64_t room =
        host.commit_limit > host.committed_as ? host.commit_limit - host.committed_as : 0;
    limits.push_back(
        {room, fmt::format("vm.overcommit_memory=2 leaves {} to commit "
                           "(CommitLimit {} - Committed_AS {})",
                           mib(room), mib(host.commit_limit), mib(host.committed_as))});
  }
  if (host.address_space_limit != UINT64_MAX) {
    limits.push_back({ram_for_span(host.address_space_limit),
                      fmt::format("RLIMIT_AS (ulimit -v) is {}, and the RAM mapping (with the "
                                  "1 GiB MMIO hole when RAM passes 3 GiB) counts against it",
                                  mib(host.address_space_limit))});
  }
  std::stable_sort(limits.begin(), limits.end(),
                   [](const RamLimit& a, const RamLimit& b) { return a.bytes < b.bytes; });
  return limits;
}

void check_guest_ram(uint64_t ram_bytes, const std::vector<RamLimit>& limits) {
  if (limits.empty() || ram_bytes <= limits.front().bytes) return;
  throw ConfigError(
      fmt::format("machine.memory_mib = {} is more than this host allows: at most "
                  "{} MiB, because {}",
                  ram_bytes >> 20, limits.front().bytes >> 20, limits.front().why));
}

}  // namespace minivmm
