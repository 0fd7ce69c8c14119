#include "vmm/x86_64/mptable.h"

#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <vector>

#include "common/error.h"
#include "vmm/kvm/guest_ram.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {
namespace {

uint8_t byte_sum(const uint8_t* p, size_t n) {
  uint8_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum = static_cast<uint8_t>(sum + p[i]);
  return sum;
}

template <typename T>
T read_at(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// What a guest OS learns from the tables, parsed the way Linux does:
// scan 16-byte boundaries for a valid floating pointer, then walk entries.
struct ParsedMpTable {
  MpConfigHeader header{};
  std::vector<MpProcessorEntry> cpus;
  std::vector<MpBusEntry> buses;
  std::vector<MpIoApicEntry> ioapics;
  std::vector<MpInterruptEntry> io_interrupts;
  std::vector<MpInterruptEntry> local_interrupts;
  std::vector<uint8_t> entry_types;  // in table order
};

ParsedMpTable parse(const GuestRamMapping& ram, uint64_t scan_start, uint64_t scan_len) {
  std::optional<MpFloatingPointer> mpf;
  for (uint64_t a = scan_start; a + 16 <= scan_start + scan_len; a += 16) {
    if (std::memcmp(ram.data() + a, "_MP_", 4) == 0 && byte_sum(ram.data() + a, 16) == 0) {
      mpf = read_at<MpFloatingPointer>(ram.data() + a);
      break;
    }
  }
  EXPECT_TRUE(mpf.has_value()) << "no valid _MP_ floating pointer found";
  ParsedMpTable t;
  if (!mpf) return t;
  EXPECT_EQ(mpf->length, 1);
  EXPECT_EQ(mpf->spec_rev, 4);
  EXPECT_EQ(mpf->feature1, 0) << "a configuration table must be present";

  const uint8_t* cfg = ram.data() + mpf->config_addr;
  t.header = read_at<MpConfigHeader>(cfg);
  EXPECT_EQ(std::memcmp(t.header.signature, "PCMP", 4), 0);
  EXPECT_EQ(byte_sum(cfg, t.header.length), 0) << "config table checksum";
  EXPECT_EQ(t.header.spec_rev, 4);
  EXPECT_EQ(t.header.local_apic_addr, 0xfee00000u);
  EXPECT_EQ(t.header.ext_table_length, 0);

  const uint8_t* p = cfg + sizeof(MpConfigHeader);
  for (unsigned i = 0; i < t.header.entry_count; ++i) {
    EXPECT_LT(p, cfg + t.header.length) << "entry " << i << " past table length";
    t.entry_types.push_back(*p);
    switch (*p) {
      case kMpProcessor:
        t.cpus.push_back(read_at<MpProcessorEntry>(p));
        p += sizeof(MpProcessorEntry);
        break;
      case kMpBus:
        t.buses.push_back(read_at<MpBusEntry>(p));
        p += sizeof(MpBusEntry);
        break;
      case kMpIoApic:
        t.ioapics.push_back(read_at<MpIoApicEntry>(p));
        p += sizeof(MpIoApicEntry);
        break;
      case kMpIoInterrupt:
        t.io_interrupts.push_back(read_at<MpInterruptEntry>(p));
        p += sizeof(MpInterruptEntry);
        break;
      case kMpLocalInterrupt:
        t.local_interrupts.push_back(read_at<MpInterruptEntry>(p));
        p += sizeof(MpInterruptEntry);
        break;
      default: ADD_FAILURE() << "unknown entry type " << int{*p}; return t;
    }
  }
  EXPECT_EQ(p, cfg + t.header.length) << "entries do not fill the table exactly";
  return t;
}

class MpTableTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(MpTableTest, DescribesCpusIsaBusIoApicAndInterrupts) {
  const uint32_t n = GetParam();
  GuestRamMapping ram(16 << 20);
  write_mptable(ram.view(), n);
  // Linux scans the last KiB of base memory (mpparse.c: 639 * 0x400).
  const ParsedMpTable t = parse(ram, 639UL * 0x400, 0x400);

  ASSERT_EQ(t.cpus.size(), n);
  for (uint32_t i = 0; i < n; ++i) {
    EXPECT_EQ(t.cpus[i].local_apic_id, i);
    EXPECT_EQ(t.cpus[i].local_apic_version, 0x14);
    EXPECT_EQ(t.cpus[i].cpu_flags, i == 0 ? 0x3 : 0x1) << "EN on all, BP only on cpu 0";
  }
  ASSERT_EQ(t.buses.size(), 1u);
  EXPECT_EQ(std::memcmp(t.buses[0].bus_type, "ISA   ", 6), 0);
  ASSERT_EQ(t.ioapics.size(), 1u);
  EXPECT_EQ(t.ioapics[0].id, n);
  EXPECT_EQ(t.ioapics[0].version, 0x11);
  EXPECT_EQ(t.ioapics[0].flags, 1);
  EXPECT_EQ(t.ioapics[0].address, 0xfec00000u);

  ASSERT_EQ(t.io_interrupts.size(), 24u);
  for (uint8_t irq = 0; irq < 24; ++irq) {
    const MpInterruptEntry& e = t.io_interrupts[irq];
    EXPECT_EQ(e.interrupt_type, kMpInt);
    EXPECT_EQ(e.source_bus_id, t.buses[0].bus_id);
    EXPECT_EQ(e.source_bus_irq, irq);
    EXPECT_EQ(e.dest_apic_id, n) << "routed to the I/O APIC";
    EXPECT_EQ(e.dest_pin, irq) << "identity routing";
    EXPECT_EQ(e.flags, 0) << "conforms to the ISA bus: edge, active high (virtio pins 16-23 too)";
  }
  ASSERT_EQ(t.local_interrupts.size(), 2u);
  EXPECT_EQ(t.local_interrupts[0].interrupt_type, kMpExtInt);
  EXPECT_EQ(t.local_interrupts[0].dest_pin, 0);  // LINT0
  EXPECT_EQ(t.local_interrupts[1].interrupt_type, kMpNmi);
  EXPECT_EQ(t.local_interrupts[1].dest_pin, 1);  // LINT1
  for (size_t i = 1; i < t.entry_types.size(); ++i) {
    EXPECT_LE(t.entry_types[i - 1], t.entry_types[i]) << "entries sorted by type";
  }
  EXPECT_EQ(t.header.entry_count, n + 1 + 1 + 24 + 2);
  EXPECT_LE(layout::kMpTableAddr + 16 + t.header.length, layout::kHighMemStart);
}

INSTANTIATE_TEST_SUITE_P(CpuCounts, MpTableTest, ::testing::Values(1u, 2u, 16u, 254u));

TEST(MpTableLimitsTest, RejectsZeroAndTooManyCpus) {
  EXPECT_THROW(build_mptable(0, layout::kMpTableAddr), Error);
  EXPECT_THROW(build_mptable(255, layout::kMpTableAddr), Error);
  EXPECT_NO_THROW(build_mptable(254, layout::kMpTableAddr));
}

TEST(MpTableLimitsTest, RefusesMemoryThatDoesNotCoverTheTable) {
  GuestRamMapping ram(layout::kMpTableAddr + 0x20);
  EXPECT_THROW(write_mptable(ram.view(), 2), Error);
}

TEST(MpTableLimitsTest, CorruptingAByteBreaksTheChecksum) {
  // The checksums are real: a changed byte no longer sums to zero.
  std::vector<uint8_t> table = build_mptable(2, layout::kMpTableAddr);
  EXPECT_EQ(byte_sum(table.data(), 16), 0);
  EXPECT_EQ(byte_sum(table.data() + 16, table.size() - 16), 0);
  table[16 + sizeof(MpConfigHeader) + 1] ^= 1;
  EXPECT_NE(byte_sum(table.data() + 16, table.size() - 16), 0);
}

}  // namespace
}  // namespace minivmm
