// How much guest RAM this host and its KVM can give a guest, checked before
// anything is allocated. Each bound names where it comes from:
//  - the vCPU's physical address width (CPUID 0x80000008 EAX[7:0], as
//    KVM_GET_SUPPORTED_CPUID reports it): the top of RAM, which with RAM
//    above 3 GiB is RAM + the 1 GiB MMIO hole, must be addressable;
//  - KVM's largest memory slot, KVM_MEM_MAX_NR_PAGES (2^31 - 1) pages
//    (include/linux/kvm_host.h), for the slot above 4 GiB;
//  - the host's overcommit policy (Documentation/mm/overcommit-accounting.rst):
//    in mode 0 (heuristic) the kernel refuses a single allocation larger than
//    RAM + swap; guest RAM is MAP_NORESERVE, which mode 0 would let through,
//    but a guest the host could never back is refused the same way. Mode 1
//    (always overcommit) sets no bound; in mode 2 (strict) MAP_NORESERVE is
//    ignored and the RAM must fit CommitLimit - Committed_AS;
//  - RLIMIT_AS (ulimit -v), which the RAM mapping counts against.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <string>
#include <vector>

namespace minivmm {

// What the host says about its memory (/proc/meminfo, /proc/sys/vm,
// getrlimit). Bytes; 0 where unknown.
struct HostMemory {
  uint64_t mem_total = 0;
  uint64_t swap_total = 0;
  uint64_t commit_limit = 0;
  uint64_t committed_as = 0;
  int overcommit_mode = 0;                    // vm.overcommit_memory: 0, 1 or 2
  uint64_t address_space_limit = UINT64_MAX;  // RLIMIT_AS soft limit; UINT64_MAX: none
};

HostMemory read_host_memory();

// The vCPU's physical address bits from CPUID leaf 0x80000008 (EAX[7:0]);
// 36 when the leaf is absent (Intel SDM vol. 3A 4.1.4: MAXPHYADDR).
unsigned guest_phys_addr_bits(const std::vector<kvm_cpuid_entry2>& cpuid);

// One upper bound on guest RAM, in bytes of RAM, and why.
struct RamLimit {
  uint64_t bytes = 0;
  std::string why;
};

// Every bound that applies, tightest first.
std::vector<RamLimit> guest_ram_limits(const HostMemory& host, unsigned phys_addr_bits);

// Throws ConfigError naming machine.memory_mib and the tightest bound when
// `ram_bytes` exceeds it.
void check_guest_ram(uint64_t ram_bytes, const std::vector<RamLimit>& limits);

}  // namespace minivmm
