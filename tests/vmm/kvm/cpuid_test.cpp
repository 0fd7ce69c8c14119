#include "vmm/kvm/cpuid.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "vmm/kvm/host_cpu.h"

namespace minivmm {
namespace {

constexpr uint64_t kXcr0Avx512Pkru = 0x2e7;  // x87 SSE AVX opmask ZMM_Hi256 Hi16_ZMM PKRU
constexpr uint64_t kXcr0Amx = (1ull << 17) | (1ull << 18);
constexpr uint32_t kXssCetUser = 1u << 11;

// NOLINTNEXTLINE(bugprone-easily-swappable-parameters): kvm_cpuid_entry2's own field order
kvm_cpuid_entry2 entry(uint32_t function, uint32_t index, uint32_t eax, uint32_t ebx, uint32_t ecx,
                       uint32_t edx) {
  kvm_cpuid_entry2 e{};
  e.function = function;
  e.index = index;
  e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
  e.eax = eax;
  e.ebx = ebx;
  e.ecx = ecx;
  e.edx = edx;
  return e;
}

kvm_cpuid_entry2 vendor_leaf(const char* vendor) {
  kvm_cpuid_entry2 e = entry(0, 0, 0x1f, 0, 0, 0);
  std::memcpy(&e.ebx, vendor, 4);
  std::memcpy(&e.edx, vendor + 4, 4);
  std::memcpy(&e.ecx, vendor + 8, 4);
  return e;
}

// What a KVM_GET_SUPPORTED_CPUID on a 2-socket, 2-threads-per-core host
// might pass through: host APIC ids, host cache sharing, a PMU, AVX-512,
// PKRU and AMX, XSAVES with one supervisor component (CET user state).
std::vector<kvm_cpuid_entry2> host_table(const char* vendor) {
  const uint32_t xsave_avx_fma = (1u << 26) | (1u << 28) | (1u << 12);
  return {
      vendor_leaf(vendor),
      // leaf 1: APIC id 0x25, 64 logical processors, HTT, PDCM
      entry(1, 0, 0x806f8, (0x25u << 24) | (64u << 16) | 0x0800, xsave_avx_fma | (1u << 15),
            1u << 28),
      // leaf 4: L1d, L1i, L2 (2 threads), L3 (128 threads), end; 32 cores
      entry(4, 0, (31u << 26) | (1u << 14) | (1u << 5) | 1, 0, 63, 0),
      entry(4, 1, (31u << 26) | (1u << 14) | (1u << 5) | 2, 0, 63, 0),
      entry(4, 2, (31u << 26) | (1u << 14) | (2u << 5) | 3, 0, 1023, 0),
      entry(4, 3, (31u << 26) | (127u << 14) | (3u << 5) | 3, 0, 49151, 0),
      entry(4, 4, 0, 0, 0, 0),
      // leaf 7: AVX2, AVX512F; PKU; AMX_TILE
      entry(7, 0, 0, (1u << 5) | (1u << 16), 1u << 3, 1u << 24),
      // leaf 0xA: architectural PMU version 2, 8 counters
      entry(0xa, 0, 0x07300802, 0, 0, 0x603),
      // leaf 0xB: the host's SMT (2) and core (64) levels, x2APIC id 0x25
      entry(0xb, 0, 1, 2, 0x100, 0x25),
      entry(0xb, 1, 7, 64, 0x201, 0x25),
      entry(0xb, 2, 0, 0, 2, 0x25),
      // leaf 0xD: subleaf 0 XCR0 mask, sizes; 1: XSAVEOPT/C/GETBV1/S and XSS
      entry(0xd, 0, static_cast<uint32_t>(kXcr0Avx512Pkru | kXcr0Amx), 11008, 11008, 0),
      entry(0xd, 1, 0xf, 10768, kXssCetUser, 0),
      // subleaf i: size, offset, ECX[0] supervisor, ECX[1] 64-byte aligned
      entry(0xd, 2, 256, 576, 0, 0),
      entry(0xd, 5, 64, 1088, 0, 0),
      entry(0xd, 6, 512, 1152, 0, 0),
      entry(0xd, 7, 1024, 1664, 0, 0),
      entry(0xd, 9, 8, 2688, 0, 0),
      entry(0xd, 11, 16, 0, 1, 0),
      entry(0xd, 17, 64, 2752, 2, 0),
      entry(0xd, 18, 8192, 2816, 2, 0),
      // KVM's paravirt leaves: signature and every feature bit
      entry(0x40000000, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d),
      entry(0x40000001, 0, 0xffffffff, 0, 0, 0),
      // AMD: PerfCtrExtCore, TopoExt, CmpLegacy clear
      entry(0x80000001, 0, 0, 0, (1u << 23) | (1u << 22), 0),
      // AMD: 48 address bits; 128 threads, ApicIdSize 7
      entry(0x80000008, 0, 0x3030, 0, (7u << 12) | 127, 0),
      // AMD cache topology: L1d and L3 (16 sharing)
      entry(0x8000001d, 0, (1u << 14) | (1u << 5) | 1, 0, 63, 0),
      entry(0x8000001d, 3, (15u << 14) | (3u << 5) | 3, 0, 16383, 0),
      entry(0x8000001e, 0, 0x25, 0x0112, 0x0301, 0),
  };
}

const kvm_cpuid_entry2& leaf(const std::vector<kvm_cpuid_entry2>& t, uint32_t function,
                             uint32_t index = 0) {
  for (const auto& e : t) {
    if (e.function == function && e.index == index) return e;
  }
  ADD_FAILURE() << "no CPUID leaf 0x" << std::hex << function << " subleaf " << index;
  static const kvm_cpuid_entry2 none{};
  return none;
}

bool has_leaf(const std::vector<kvm_cpuid_entry2>& t, uint32_t function) {
  for (const auto& e : t) {
    if (e.function == function) return true;
  }
  return false;
}

VcpuCpuidPolicy policy(unsigned index, unsigned count, CpuVendor vendor) {
  VcpuCpuidPolicy p;
  p.vcpu_index = index;
  p.vcpu_count = count;
  p.vendor = vendor;
  p.permitted_xcr0 = ~kXcr0Amx;
  return p;
}

TEST(CpuidTest, VendorComesFromLeafZero) {
  EXPECT_EQ(cpuid_vendor(host_table("GenuineIntel")), CpuVendor::kIntel);
  EXPECT_EQ(cpuid_vendor(host_table("AuthenticAMD")), CpuVendor::kAmd);
  EXPECT_EQ(cpuid_vendor(host_table("HygonGenuine")), CpuVendor::kAmd);
  EXPECT_EQ(cpuid_vendor(host_table("CentaurHauls")), CpuVendor::kOther);
  EXPECT_EQ(cpuid_vendor({}), CpuVendor::kOther);
}

TEST(CpuidTest, ApicIdWidthHoldsEveryId) {
  EXPECT_EQ(apic_id_width(1), 0u);
  EXPECT_EQ(apic_id_width(2), 1u);
  EXPECT_EQ(apic_id_width(3), 2u);
  EXPECT_EQ(apic_id_width(4), 2u);
  EXPECT_EQ(apic_id_width(5), 3u);
  EXPECT_EQ(apic_id_width(256), 8u);
}

TEST(CpuidTest, EachVcpuOfFourGetsItsApicIdAndThePackageCountInLeafOne) {
  for (unsigned i = 0; i < 4; ++i) {
    const auto t = normalize_cpuid(host_table("GenuineIntel"), policy(i, 4, CpuVendor::kIntel));
    const auto& l1 = leaf(t, 1);
    EXPECT_EQ(l1.ebx >> 24, i);
    EXPECT_EQ((l1.ebx >> 16) & 0xff, 4u);
    EXPECT_EQ(l1.ebx & 0xffff, 0x0800u) << "CLFLUSH size kept";
    EXPECT_TRUE(l1.edx & (1u << 28)) << "HTT: the count is valid";
    EXPECT_TRUE(l1.ecx & (1u << 31)) << "hypervisor bit";
  }
}

TEST(CpuidTest, OneVcpuHasNoHttAndNoCmpLegacy) {
  auto t = normalize_cpuid(host_table("AuthenticAMD"), policy(0, 1, CpuVendor::kAmd));
  EXPECT_FALSE(leaf(t, 1).edx & (1u << 28));
  EXPECT_EQ((leaf(t, 1).ebx >> 16) & 0xff, 1u);
  EXPECT_FALSE(leaf(t, 0x80000001).ecx & (1u << 1));
  EXPECT_EQ(leaf(t, 0x80000008).ecx, 0u) << "ApicIdSize 0, NC 0";
}

TEST(CpuidTest, ExtendedTopologyHasOneThreadPerCoreAndOneCorePerVcpu) {
  for (unsigned i = 0; i < 4; ++i) {
    const auto t = normalize_cpuid(host_table("GenuineIntel"), policy(i, 4, CpuVendor::kIntel));
    const auto& smt = leaf(t, 0xb, 0);
    EXPECT_EQ(smt.eax, 0u) << "no thread bits in the APIC id";
    EXPECT_EQ(smt.ebx, 1u);
    EXPECT_EQ(smt.ecx, 0x100u) << "subleaf 0, level type SMT";
    EXPECT_EQ(smt.edx, i) << "x2APIC id";
    const auto& core = leaf(t, 0xb, 1);
    EXPECT_EQ(core.eax, 2u) << "2 bits for 4 cores";
    EXPECT_EQ(core.ebx, 4u);
    EXPECT_EQ(core.ecx, 0x201u) << "subleaf 1, level type core";
    EXPECT_EQ(core.edx, i);
    const auto& end = leaf(t, 0xb, 2);
    EXPECT_EQ(end.ebx, 0u);
    EXPECT_EQ(end.ecx, 2u) << "level type 0 ends the enumeration";
    EXPECT_EQ(end.edx, i);
    EXPECT_FALSE(has_leaf(t, 0x1f)) << "a leaf the host does not offer is not invented";
  }
}

TEST(CpuidTest, LeafOneFIsRewrittenLikeLeafBWhenOffered) {
  auto table = host_table("GenuineIntel");
  table.push_back(entry(0x1f, 0, 1, 2, 0x100, 0x25));
  table.push_back(entry(0x1f, 1, 7, 64, 0x201, 0x25));
  table.push_back(entry(0x1f, 2, 8, 128, 0x502, 0x25));  // a die level
  table.push_back(entry(0x1f, 3, 0, 0, 3, 0x25));
  const auto t = normalize_cpuid(table, policy(3, 4, CpuVendor::kIntel));
  EXPECT_EQ(leaf(t, 0x1f, 0).edx, 3u);
  EXPECT_EQ(leaf(t, 0x1f, 1).eax, 2u);
  EXPECT_EQ(leaf(t, 0x1f, 1).ebx, 4u);
  EXPECT_EQ(leaf(t, 0x1f, 2).ecx, 2u) << "the host's die level is gone";
  for (const auto& e : t) EXPECT_FALSE(e.function == 0x1f && e.index == 3);
}

TEST(CpuidTest, IntelCacheLeafCountsTheGuestsCoresAndSharesOnlyTheL3) {
  const auto t = normalize_cpuid(host_table("GenuineIntel"), policy(1, 4, CpuVendor::kIntel));
  for (uint32_t sub = 0; sub < 3; ++sub) {
    EXPECT_EQ(leaf(t, 4, sub).eax >> 26, 3u) << "cores per package - 1, subleaf " << sub;
    EXPECT_EQ((leaf(t, 4, sub).eax >> 14) & 0xfff, 0u) << "L1/L2: one thread, subleaf " << sub;
  }
  EXPECT_EQ((leaf(t, 4, 3).eax >> 14) & 0xfff, 3u) << "L3 shared by the 4 vCPUs";
  EXPECT_EQ(leaf(t, 4, 3).eax & 0x3fff, (3u << 5) | 3) << "cache level and type kept";
  EXPECT_EQ(leaf(t, 4, 4).eax, 0u) << "the end of the list stays empty";
}

TEST(CpuidTest, AmdTopologyLeavesDescribeTheGuestsCores) {
  for (unsigned i = 0; i < 4; ++i) {
    const auto t = normalize_cpuid(host_table("AuthenticAMD"), policy(i, 4, CpuVendor::kAmd));
    EXPECT_EQ(leaf(t, 0x80000008).ecx, (2u << 12) | 3) << "ApicIdSize 2, NC = 4 - 1";
    EXPECT_EQ(leaf(t, 0x80000008).eax, 0x3030u) << "address sizes kept";
    EXPECT_EQ(leaf(t, 0x8000001e).eax, i) << "extended APIC id";
    EXPECT_EQ(leaf(t, 0x8000001e).ebx, i) << "core id, one thread per core";
    EXPECT_EQ(leaf(t, 0x8000001e).ecx, 0u) << "node 0, one node";
    EXPECT_TRUE(leaf(t, 0x80000001).ecx & (1u << 1)) << "CmpLegacy";
    EXPECT_TRUE(leaf(t, 0x80000001).ecx & (1u << 22)) << "TopoExt kept";
    EXPECT_EQ((leaf(t, 0x8000001d, 0).eax >> 14) & 0xfff, 0u);
    EXPECT_EQ((leaf(t, 0x8000001d, 3).eax >> 14) & 0xfff, 3u);
    EXPECT_EQ(leaf(t, 0xb, 1).ebx, 4u) << "AMD's leaf 0xB too";
    EXPECT_EQ(leaf(t, 4, 3).eax, (31u << 26) | (127u << 14) | (3u << 5) | 3)
        << "leaf 4 is Intel's: left alone on AMD";
  }
}

TEST(CpuidTest, NoPmuIsOffered) {
  const auto intel = normalize_cpuid(host_table("GenuineIntel"), policy(0, 2, CpuVendor::kIntel));
  const auto& pmu = leaf(intel, 0xa);
  EXPECT_EQ(pmu.eax | pmu.ebx | pmu.ecx | pmu.edx, 0u);
  EXPECT_FALSE(leaf(intel, 1).ecx & (1u << 15)) << "PDCM";
  const auto amd = normalize_cpuid(host_table("AuthenticAMD"), policy(0, 2, CpuVendor::kAmd));
  EXPECT_FALSE(leaf(amd, 0x80000001).ecx & (1u << 23)) << "PerfCtrExtCore";
}

TEST(CpuidTest, XsaveSizesAreTheSumOfTheOfferedComponentsWithoutUnpermittedAmx) {
  const auto t = normalize_cpuid(host_table("GenuineIntel"), policy(0, 1, CpuVendor::kIntel));
  const auto& sub0 = leaf(t, 0xd, 0);
  EXPECT_EQ(sub0.eax, kXcr0Avx512Pkru);
  EXPECT_EQ(sub0.edx, 0u);
  // Standard format: the last offered component, PKRU, ends at 2688 + 8.
  EXPECT_EQ(sub0.ecx, 2688u + 8);
  EXPECT_EQ(sub0.ebx, 2688u + 8);
  // Compacted: legacy area and header, AVX, opmask, ZMM_Hi256, Hi16_ZMM,
  // PKRU, and the supervisor CET user state.
  EXPECT_EQ(leaf(t, 0xd, 1).ebx, 576u + 256 + 64 + 512 + 1024 + 8 + 16);
  EXPECT_EQ(leaf(t, 0xd, 1).ecx, kXssCetUser) << "supervisor components kept";
  EXPECT_EQ(leaf(t, 0xd, 17).eax, 0u) << "AMX tile config dropped";
  EXPECT_EQ(leaf(t, 0xd, 18).eax, 0u) << "AMX tile data dropped";
  EXPECT_EQ(leaf(t, 0xd, 2).eax, 256u) << "AVX kept";
  EXPECT_FALSE(leaf(t, 7).edx & (1u << 24)) << "AMX_TILE";
}

TEST(CpuidTest, PermittedAmxIsOfferedWithItsAlignedCompactedOffset) {
  VcpuCpuidPolicy p = policy(0, 1, CpuVendor::kIntel);
  p.permitted_xcr0 = ~uint64_t{0};
  const auto t = normalize_cpuid(host_table("GenuineIntel"), p);
  EXPECT_EQ(leaf(t, 0xd, 0).eax, kXcr0Avx512Pkru | kXcr0Amx);
  EXPECT_EQ(leaf(t, 0xd, 0).ecx, 2816u + 8192);
  // 2456 rounds up to 2496 for tile config (64), then tile data at 2560.
  EXPECT_EQ(leaf(t, 0xd, 1).ebx, 2560u + 8192);
  EXPECT_TRUE(leaf(t, 7).edx & (1u << 24));
}

TEST(CpuidTest, HalfOfAmxIsNotOffered) {
  VcpuCpuidPolicy p = policy(0, 1, CpuVendor::kIntel);
  p.permitted_xcr0 = ~(1ull << 18);  // tile config without tile data
  const auto t = normalize_cpuid(host_table("GenuineIntel"), p);
  EXPECT_EQ(leaf(t, 0xd, 0).eax, kXcr0Avx512Pkru);
  EXPECT_EQ(leaf(t, 0xd, 17).eax, 0u);
}

void expect_no_xsave(const std::vector<kvm_cpuid_entry2>& t) {
  EXPECT_FALSE(leaf(t, 1).ecx & (1u << 26)) << "XSAVE";
  EXPECT_FALSE(leaf(t, 1).ecx & (1u << 28)) << "AVX";
  EXPECT_FALSE(leaf(t, 1).ecx & (1u << 12)) << "FMA";
  EXPECT_FALSE(leaf(t, 7).ebx & ((1u << 5) | (1u << 16))) << "AVX2, AVX512F";
  EXPECT_FALSE(leaf(t, 7).ecx & (1u << 3)) << "PKU";
  EXPECT_FALSE(leaf(t, 7).edx & (1u << 24)) << "AMX_TILE";
  for (const auto& e : t) {
    if (e.function == 0xd) {
      EXPECT_EQ(e.eax | e.ebx | e.ecx | e.edx, 0u) << "leaf 0xD subleaf " << e.index;
    }
  }
}

TEST(CpuidTest, HiddenXsaveClearsLeafDAndTheFeaturesThatNeedIt) {
  VcpuCpuidPolicy p = policy(0, 2, CpuVendor::kIntel);
  p.hide_xsave = true;
  expect_no_xsave(normalize_cpuid(host_table("GenuineIntel"), p));
}

TEST(CpuidTest, LeafDIsZeroWhenKvmOffersNoXsave) {
  auto table = host_table("AuthenticAMD");
  for (auto& e : table) {
    if (e.function == 1) e.ecx &= ~(1u << 26);
  }
  expect_no_xsave(normalize_cpuid(table, policy(0, 2, CpuVendor::kAmd)));
}

TEST(CpuidTest, HypervisorLeavesKeepKvmsSignatureAndHidePvHypercallsOnRequest) {
  VcpuCpuidPolicy p = policy(0, 2, CpuVendor::kIntel);
  auto t = normalize_cpuid(host_table("GenuineIntel"), p);
  EXPECT_EQ(leaf(t, 0x40000000).ebx, 0x4b4d564bu) << "KVMKVMKVM";
  EXPECT_EQ(leaf(t, 0x40000001).eax, 0xffffffffu);
  p.hide_pv_hypercalls = true;
  t = normalize_cpuid(host_table("GenuineIntel"), p);
  EXPECT_EQ(leaf(t, 0x40000001).eax, ~((1u << 7) | (1u << 9) | (1u << 11) | (1u << 13)));
}

TEST(CpuidTest, OnlyQemusSoftwareEmulatorHidesGuestXsetbvFromKvm) {
  EXPECT_FALSE(host_tracks_guest_xsetbv("TCGTCGTCGTCG"));
  EXPECT_TRUE(host_tracks_guest_xsetbv("KVMKVMKVM"));
  EXPECT_TRUE(host_tracks_guest_xsetbv(""));
}

}  // namespace
}  // namespace minivmm
