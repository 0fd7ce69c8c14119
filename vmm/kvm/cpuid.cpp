#include "vmm/kvm/cpuid.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <string_view>

#include "vmm/kvm/pvm_quirks.h"

namespace minivmm {
namespace {

// A guest PMU is not offered: KVM's virtual PMU multiplexes host counters, a
// guest driver probing them costs exits, and nothing here measures inside the
// guest. CPUID.0xA zero means "no architectural PMU" (Intel SDM vol. 3B 20.2).
constexpr bool kGuestPmu = false;

constexpr uint32_t bit(unsigned n) { return 1u << n; }

// Leaf 1 (Intel SDM vol. 2A, CPUID, table 3-10/3-11).
constexpr uint32_t kLeaf1EdxHtt = bit(28);
constexpr uint32_t kLeaf1EcxFma = bit(12);
constexpr uint32_t kLeaf1EcxPdcm = bit(15);  // IA32_PERF_CAPABILITIES: a PMU MSR
constexpr uint32_t kLeaf1EcxXsave = bit(26);
constexpr uint32_t kLeaf1EcxOsxsave = bit(27);
constexpr uint32_t kLeaf1EcxAvx = bit(28);
constexpr uint32_t kLeaf1EcxF16c = bit(29);
constexpr uint32_t kLeaf1EcxHypervisor = bit(31);

// Leaf 7 subleaf 0/1 features whose state lives in an XSAVE component (AVX,
// AVX-512, PKRU, AMX): without XSAVE the guest cannot enable them.
constexpr uint32_t kLeaf7EbxNeedsXsave = bit(5) /* AVX2 */ | bit(16) | bit(17) | bit(21) | bit(26) |
                                         bit(27) | bit(28) | bit(30) |
                                         bit(31) /* AVX512F, DQ, IFMA, PF, ER, CD, BW, VL */;
constexpr uint32_t kLeaf7EcxNeedsXsave = bit(1) /* AVX512_VBMI */ | bit(3) /* PKU */ |
                                         bit(4) /* OSPKE */ | bit(6) /* AVX512_VBMI2 */ |
                                         bit(9) /* VAES */ | bit(10) /* VPCLMULQDQ */ | bit(11) |
                                         bit(12) | bit(14) /* VNNI, BITALG, VPOPCNTDQ */;
constexpr uint32_t kLeaf7EdxAmx = bit(22) | bit(24) | bit(25);  // AMX_BF16, AMX_TILE, AMX_INT8
constexpr uint32_t kLeaf7EdxNeedsXsave = bit(2) | bit(3) | bit(8) |
                                         bit(23) /* AVX512_4VNNIW, 4FMAPS, VP2INTERSECT, FP16 */ |
                                         kLeaf7EdxAmx;
constexpr uint32_t kLeaf7Sub1EaxNeedsXsave = bit(4) | bit(5);  // AVX_VNNI, AVX512_BF16

// Leaf 0xB/0x1F level types (ECX[15:8]).
constexpr uint32_t kLevelSmt = 1;
constexpr uint32_t kLevelCore = 2;

// Leaf 0xD (Intel SDM vol. 1, 13.2): components 0 (x87) and 1 (SSE) live in
// the 512-byte legacy area, followed by the 64-byte XSAVE header.
constexpr uint32_t kXsaveLegacyAndHeader = 512 + 64;
constexpr uint64_t kXcr0X87 = 1;
constexpr uint64_t kXcr0TileCfg = uint64_t{1} << 17;
constexpr uint64_t kXcr0TileData = uint64_t{1} << 18;
constexpr uint32_t kXsaveSub1Xsavec = bit(1);
constexpr uint32_t kXsaveSub1Xsaves = bit(3);
constexpr uint32_t kXsaveCompAligned = bit(1);     // subleaf i ECX[1]: 64-byte aligned if compacted
constexpr uint32_t kXsaveCompSupervisor = bit(0);  // subleaf i ECX[0]: IA32_XSS, not XCR0

// AMD APM vol. 3, E.4.2 (0x80000001 ECX).
constexpr uint32_t kExtEcxCmpLegacy = bit(1);
constexpr uint32_t kExtEcxXop = bit(11);
constexpr uint32_t kExtEcxFma4 = bit(16);
constexpr uint32_t kExtEcxPerfCtrExt = bit(23) | bit(24) | bit(28);  // Core, NB, LLC counters

kvm_cpuid_entry2* find(std::vector<kvm_cpuid_entry2>& table, uint32_t function, uint32_t index) {
  for (auto& e : table) {
    if (e.function == function && e.index == index) return &e;
  }
  return nullptr;
}

const kvm_cpuid_entry2* find(const std::vector<kvm_cpuid_entry2>& table, uint32_t function,
                             uint32_t index) {
  for (const auto& e : table) {
    if (e.function == function && e.index == index) return &e;
  }
  return nullptr;
}

void zero_registers(kvm_cpuid_entry2& e) { e.eax = e.ebx = e.ecx = e.edx = 0; }

// Leaf 1: initial APIC id and logical processor count (EBX[31:24], [23:16]);
// HTT says the count is meaningful (more than one logical processor).
void set_leaf1(kvm_cpuid_entry2& e, const VcpuCpuidPolicy& p) {
  e.ebx = (e.ebx & 0xffff) | (std::min(p.vcpu_count, 255u) << 16) | ((p.vcpu_index & 0xff) << 24);
  if (p.vcpu_count > 1) {
    e.edx |= kLeaf1EdxHtt;
  } else {
    e.edx &= ~kLeaf1EdxHtt;
  }
  e.ecx |= kLeaf1EcxHypervisor;
  if (!kGuestPmu) e.ecx &= ~kLeaf1EcxPdcm;
}

// Deterministic cache parameters (Intel leaf 4, AMD 0x8000001D): L1 and L2
// belong to one core (one thread), L3 is shared by the whole package.
// EAX[25:14]: threads sharing the cache - 1.
void set_cache_sharing(kvm_cpuid_entry2& e, const VcpuCpuidPolicy& p) {
  if ((e.eax & 0x1f) == 0) return;  // no cache at this subleaf
  const uint32_t level = (e.eax >> 5) & 7;
  const uint32_t sharing = level >= 3 ? std::min(p.vcpu_count, 4096u) - 1 : 0;
  e.eax = (e.eax & ~(0xfffu << 14)) | (sharing << 14);
}

// Intel leaf 4 EAX[31:26]: cores per package - 1.
void set_intel_leaf4(kvm_cpuid_entry2& e, const VcpuCpuidPolicy& p) {
  if ((e.eax & 0x1f) == 0) return;
  set_cache_sharing(e, p);
  e.eax = (e.eax & ~(0x3fu << 26)) | ((std::min(p.vcpu_count, 64u) - 1) << 26);
}

// Leaf 0xB / 0x1F: subleaf 0 the SMT level (1 thread per core, shift 0),
// subleaf 1 the core level (N cores; shift = APIC id bits for N), subleaf 2
// the invalid level that ends the enumeration. EDX: the x2APIC id, always.
void replace_extended_topology(std::vector<kvm_cpuid_entry2>& table, uint32_t function,
                               const VcpuCpuidPolicy& p) {
  const auto old_end = std::remove_if(table.begin(), table.end(),
                                      [function](const auto& e) { return e.function == function; });
  if (old_end == table.end()) return;  // the leaf is not offered
  table.erase(old_end, table.end());
  struct Level {
    uint32_t shift;  // EAX: x2APIC id bits below the next level
    uint32_t count;  // EBX: logical processors at this level
    uint32_t type;   // ECX[15:8]
  };
  const Level levels[] = {{.shift = 0, .count = 1, .type = kLevelSmt},
                          {.shift = apic_id_width(p.vcpu_count),
                           .count = p.vcpu_count,
                           .type = kLevelCore},
                          {.shift = 0, .count = 0, .type = 0}};
  for (uint32_t index = 0; index < std::size(levels); ++index) {
    kvm_cpuid_entry2 e{};
    e.function = function;
    e.index = index;
    e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    e.eax = levels[index].shift;
    e.ebx = levels[index].count;
    e.ecx = index | (levels[index].type << 8);
    e.edx = p.vcpu_index;
    table.push_back(e);
  }
}

void clear_features_needing_xsave(std::vector<kvm_cpuid_entry2>& table) {
  for (auto& e : table) {
    if (e.function == 1) {
      e.ecx &= ~(kLeaf1EcxXsave | kLeaf1EcxOsxsave | kLeaf1EcxAvx | kLeaf1EcxFma | kLeaf1EcxF16c);
    } else if (e.function == 7 && e.index == 0) {
      e.ebx &= ~kLeaf7EbxNeedsXsave;
      e.ecx &= ~kLeaf7EcxNeedsXsave;
      e.edx &= ~kLeaf7EdxNeedsXsave;
    } else if (e.function == 7 && e.index == 1) {
      e.eax &= ~kLeaf7Sub1EaxNeedsXsave;
    } else if (e.function == 0xd || e.function == 0x1d || e.function == 0x1e) {
      zero_registers(e);  // XSAVE layout; AMX tile information
    } else if (e.function == 0x80000001) {
      e.ecx &= ~(kExtEcxXop | kExtEcxFma4);
    }
  }
}

// Leaf 0xD: offer the components KVM supports and this process may give a
// guest; sizes computed from exactly those components. KVM rewrites subleaf
// 0 and 1 EBX from the guest's XCR0/XSS as it changes them; here they start,
// as KVM_GET_SUPPORTED_CPUID has them, at the size for everything offered.
void normalize_xsave(std::vector<kvm_cpuid_entry2>& table, const VcpuCpuidPolicy& p) {
  const kvm_cpuid_entry2* leaf1 = find(table, 1, 0);
  const bool xsave = leaf1 && (leaf1->ecx & kLeaf1EcxXsave);
  if (p.hide_xsave || !xsave) {
    clear_features_needing_xsave(table);
    return;
  }
  kvm_cpuid_entry2* sub0 = find(table, 0xd, 0);
  if (!sub0) return;
  uint64_t xcr0 = ((uint64_t{sub0->edx} << 32) | sub0->eax) & p.permitted_xcr0;
  // AMX: Linux enables tile config and tile data together or not at all.
  if ((xcr0 & (kXcr0TileCfg | kXcr0TileData)) != (kXcr0TileCfg | kXcr0TileData)) {
    xcr0 &= ~(kXcr0TileCfg | kXcr0TileData);
  }
  xcr0 |= kXcr0X87;
  kvm_cpuid_entry2* sub1 = find(table, 0xd, 1);
  const uint64_t xss = sub1 ? (uint64_t{sub1->edx} << 32) | sub1->ecx : 0;
  for (auto& e : table) {
    if (e.function == 0xd && e.index >= 2 && (e.index >= 64 || !((xcr0 | xss) >> e.index & 1))) {
      zero_registers(e);
    }
  }
  if (!(xcr0 & kXcr0TileData)) {
    for (auto& e : table) {
      if (e.function == 7 && e.index == 0) e.edx &= ~kLeaf7EdxAmx;
      if (e.function == 0x1d || e.function == 0x1e) zero_registers(e);
    }
  }
  sub0->eax = static_cast<uint32_t>(xcr0);
  sub0->edx = static_cast<uint32_t>(xcr0 >> 32);
  sub0->ebx = sub0->ecx = xsave_standard_size(table, xcr0);
  if (sub1) {
    const bool compacted = sub1->eax & (kXsaveSub1Xsavec | kXsaveSub1Xsaves);
    sub1->ebx = compacted ? xsave_compacted_size(table, xcr0 | xss) : 0;
  }
}

void normalize_amd_extended(kvm_cpuid_entry2& e, const VcpuCpuidPolicy& p) {
  switch (e.function) {
    case 0x80000001:
      // CmpLegacy with HTT: leaf 1's logical processor count counts cores.
      if (p.vcpu_count > 1) {
        e.ecx |= kExtEcxCmpLegacy;
      } else {
        e.ecx &= ~kExtEcxCmpLegacy;
      }
      if (!kGuestPmu) e.ecx &= ~kExtEcxPerfCtrExt;
      break;
    case 0x80000008:
      // ECX[15:12] ApicIdSize (APIC id bits for the cores), [7:0] NC: cores - 1.
      e.ecx = (apic_id_width(p.vcpu_count) << 12) | ((std::min(p.vcpu_count, 256u) - 1) & 0xff);
      break;
    case 0x8000001d: set_cache_sharing(e, p); break;
    case 0x8000001e:
      // Extended APIC id; EBX core id, threads per core - 1 (0); ECX node id 0,
      // one node per package.
      e.eax = p.vcpu_index;
      e.ebx = p.vcpu_index & 0xff;
      e.ecx = 0;
      e.edx = 0;
      break;
    case 0x80000022:  // PerfMonV2, core and northbridge counter counts
      if (!kGuestPmu) zero_registers(e);
      break;
    default: break;
  }
}

}  // namespace

CpuVendor cpuid_vendor(const std::vector<kvm_cpuid_entry2>& table) {
  const kvm_cpuid_entry2* leaf0 = find(table, 0, 0);
  if (!leaf0) return CpuVendor::kOther;
  char vendor[13] = {};
  std::memcpy(vendor, &leaf0->ebx, 4);
  std::memcpy(vendor + 4, &leaf0->edx, 4);
  std::memcpy(vendor + 8, &leaf0->ecx, 4);
  const std::string_view v(vendor);
  if (v == "GenuineIntel") return CpuVendor::kIntel;
  if (v == "AuthenticAMD" || v == "HygonGenuine") return CpuVendor::kAmd;
  return CpuVendor::kOther;
}

unsigned apic_id_width(unsigned n) {
  unsigned w = 0;
  while ((1ull << w) < n) ++w;
  return w;
}

uint32_t xsave_standard_size(const std::vector<kvm_cpuid_entry2>& table, uint64_t features) {
  uint32_t size = kXsaveLegacyAndHeader;
  for (unsigned i = 2; i < 64; ++i) {
    if (!(features >> i & 1)) continue;
    const kvm_cpuid_entry2* c = find(table, 0xd, i);
    // Supervisor components have no place in the standard format.
    if (!c || (c->ecx & kXsaveCompSupervisor)) continue;
    size = std::max(size, c->ebx + c->eax);
  }
  return size;
}

uint32_t xsave_compacted_size(const std::vector<kvm_cpuid_entry2>& table, uint64_t features) {
  uint32_t size = kXsaveLegacyAndHeader;
  for (unsigned i = 2; i < 64; ++i) {
    if (!(features >> i & 1)) continue;
    const kvm_cpuid_entry2* c = find(table, 0xd, i);
    if (!c) continue;
    if (c->ecx & kXsaveCompAligned) size = (size + 63) & ~63u;
    size += c->eax;
  }
  return size;
}

std::vector<kvm_cpuid_entry2> normalize_cpuid(std::vector<kvm_cpuid_entry2> table,
                                              const VcpuCpuidPolicy& p) {
  const bool amd = p.vendor == CpuVendor::kAmd;
  for (auto& e : table) {
    switch (e.function) {
      case 1: set_leaf1(e, p); break;
      case 4:
        if (!amd) set_intel_leaf4(e, p);
        break;
      case 0xa:
        if (!kGuestPmu) zero_registers(e);
        break;
      case 0x40000001:
        if (p.hide_pv_hypercalls) hide_pv_hypercall_features(e);
        break;
      default:
        if (amd) normalize_amd_extended(e, p);
        break;
    }
  }
  replace_extended_topology(table, 0xb, p);
  replace_extended_topology(table, 0x1f, p);
  normalize_xsave(table, p);
  return table;
}

}  // namespace minivmm
