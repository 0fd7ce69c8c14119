// Intel MultiProcessor Specification 1.4 tables describing the guest's CPUs,
// its ISA bus, the I/O APIC and how ISA IRQs reach it. Linux finds the
// floating pointer by scanning the last KiB of base memory (0x9fc00).
#pragma once

#include <cstdint>
#include <vector>

#include "common/guest_memory.h"

namespace minivmm {

// MP spec 1.4 section 4.1, Table 4-1: floating pointer structure (16 bytes).
struct [[gnu::packed]] MpFloatingPointer {
  char signature[4];     // "_MP_"
  uint32_t config_addr;  // physical address of the configuration table
  uint8_t length;        // in 16-byte paragraphs: 1
  uint8_t spec_rev;      // 4 = version 1.4
  uint8_t checksum;      // all 16 bytes sum to 0
  uint8_t feature1;      // 0: a configuration table is present
  uint8_t feature2;      // bit 7: IMCR present (0: virtual wire mode)
  uint8_t feature3[3];
};

// Section 4.2, Table 4-2: configuration table header (44 bytes).
struct [[gnu::packed]] MpConfigHeader {
  char signature[4];  // "PCMP"
  uint16_t length;    // base table length including this header
  uint8_t spec_rev;
  uint8_t checksum;  // the base table sums to 0
  char oem_id[8];
  char product_id[12];
  uint32_t oem_table_addr;
  uint16_t oem_table_size;
  uint16_t entry_count;
  uint32_t local_apic_addr;
  uint16_t ext_table_length;
  uint8_t ext_table_checksum;
  uint8_t reserved;
};

// Section 4.3, entry types in the order they must appear (Table 4-3).
enum MpEntryType : uint8_t {
  kMpProcessor = 0,
  kMpBus = 1,
  kMpIoApic = 2,
  kMpIoInterrupt = 3,
  kMpLocalInterrupt = 4,
};

// Table 4-4 (20 bytes).
struct [[gnu::packed]] MpProcessorEntry {
  uint8_t type;
  uint8_t local_apic_id;
  uint8_t local_apic_version;
  uint8_t cpu_flags;  // bit 0 EN (usable), bit 1 BP (bootstrap processor)
  uint32_t cpu_signature;
  uint32_t feature_flags;
  uint32_t reserved[2];
};

// Table 4-7 (8 bytes).
struct [[gnu::packed]] MpBusEntry {
  uint8_t type;
  uint8_t bus_id;
  char bus_type[6];  // "ISA   "
};

// Table 4-9 (8 bytes).
struct [[gnu::packed]] MpIoApicEntry {
  uint8_t type;
  uint8_t id;
  uint8_t version;
  uint8_t flags;  // bit 0 EN
  uint32_t address;
};

// Tables 4-10 / 4-12 (8 bytes): I/O and local interrupt assignment entries.
struct [[gnu::packed]] MpInterruptEntry {
  uint8_t type;
  uint8_t interrupt_type;  // MpInterruptType
  uint16_t flags;          // polarity bits 0-1, trigger bits 2-3; 0 = conforms to bus
  uint8_t source_bus_id;
  uint8_t source_bus_irq;
  uint8_t dest_apic_id;  // I/O APIC id, or local APIC id (0xff: all)
  uint8_t dest_pin;      // I/O APIC INTIN#, or LINTIN#
};

enum MpInterruptType : uint8_t { kMpInt = 0, kMpNmi = 1, kMpSmi = 2, kMpExtInt = 3 };

static_assert(sizeof(MpFloatingPointer) == 16);
static_assert(sizeof(MpConfigHeader) == 44);
static_assert(sizeof(MpProcessorEntry) == 20);
static_assert(sizeof(MpBusEntry) == 8);
static_assert(sizeof(MpIoApicEntry) == 8);
static_assert(sizeof(MpInterruptEntry) == 8);

inline constexpr uint8_t kMpLocalApicVersion = 0x14;
inline constexpr uint8_t kMpIoApicVersion = 0x11;
inline constexpr uint8_t kMpIsaBusId = 0;
// KVM's in-kernel I/O APIC has 24 pins; GSI n is wired to pin n.
inline constexpr uint8_t kMpIoApicPins = 24;
inline constexpr uint8_t kMpAllLocalApics = 0xff;
// The I/O APIC takes APIC id num_cpus; 0xff is the broadcast id.
inline constexpr uint32_t kMpMaxCpus = 254;

// The floating pointer followed by the configuration table, as the bytes to
// place at guest physical `base_addr`. Throws for num_cpus of 0 or above
// kMpMaxCpus.
std::vector<uint8_t> build_mptable(uint32_t num_cpus, uint64_t base_addr);

// Writes build_mptable(num_cpus, kMpTableAddr) into `mem`; throws when it
// would not fit below 1 MiB.
void write_mptable(const GuestMemory& mem, uint32_t num_cpus);

}  // namespace minivmm
