#include "vmm/x86_64/mptable.h"

#include <fmt/format.h>

#include <cstring>

#include "common/error.h"
#include "vmm/x86_64/load_range.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {
namespace {

constexpr uint8_t kSpecRev14 = 4;
constexpr uint8_t kCpuEnabled = 1 << 0;
constexpr uint8_t kCpuBootstrap = 1 << 1;
constexpr uint8_t kIoApicEnabled = 1 << 0;
// Family 6 in the CPUID signature layout; features: FPU (bit 0), APIC (bit 9).
constexpr uint32_t kCpuSignature = 0x600;
constexpr uint32_t kCpuFeatures = (1u << 0) | (1u << 9);
// ISA IRQs conform to the bus: edge triggered, active high.
constexpr uint16_t kConformsToBus = 0;

template <typename T>
void append(std::vector<uint8_t>& out, const T& entry) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(&entry);
  out.insert(out.end(), bytes, bytes + sizeof(T));
}

// Value that makes the 8-bit sum of bytes [begin, end) zero.
uint8_t checksum(const std::vector<uint8_t>& bytes, size_t begin, size_t end) {
  uint8_t sum = 0;
  for (size_t i = begin; i < end; ++i) sum = static_cast<uint8_t>(sum + bytes[i]);
  return static_cast<uint8_t>(-sum);
}

void append_processors(std::vector<uint8_t>& out, uint32_t num_cpus) {
  for (uint32_t cpu = 0; cpu < num_cpus; ++cpu) {
    MpProcessorEntry e{};
    e.type = kMpProcessor;
    e.local_apic_id = static_cast<uint8_t>(cpu);
    e.local_apic_version = kMpLocalApicVersion;
    e.cpu_flags = kCpuEnabled | (cpu == 0 ? kCpuBootstrap : 0);
    e.cpu_signature = kCpuSignature;
    e.feature_flags = kCpuFeatures;
    append(out, e);
  }
}

// Which source interrupt reaches which APIC pin (MP spec 1.4, 4.3.4/4.3.5).
struct InterruptRoute {
  uint8_t type;            // I/O or local interrupt assignment entry
  uint8_t interrupt_type;  // INT, NMI, ExtINT
  uint8_t irq;             // source bus IRQ
  uint8_t dest_apic;
  uint8_t pin;
};

MpInterruptEntry interrupt_entry(const InterruptRoute& route) {
  MpInterruptEntry e{};
  e.type = route.type;
  e.interrupt_type = route.interrupt_type;
  e.flags = kConformsToBus;
  e.source_bus_id = kMpIsaBusId;
  e.source_bus_irq = route.irq;
  e.dest_apic_id = route.dest_apic;
  e.dest_pin = route.pin;
  return e;
}

}  // namespace

std::vector<uint8_t> build_mptable(uint32_t num_cpus, uint64_t base_addr) {
  if (num_cpus == 0 || num_cpus > kMpMaxCpus) {
    throw Error(
        fmt::format("MP table: {} vCPUs is outside 1..{} (APIC ids are 8 bits and the "
                    "I/O APIC takes id {})",
                    num_cpus, kMpMaxCpus, num_cpus));
  }
  const uint8_t ioapic_id = static_cast<uint8_t>(num_cpus);
  const uint64_t config_addr = base_addr + sizeof(MpFloatingPointer);
  if (config_addr > UINT32_MAX) {
    throw Error(fmt::format("MP table: address {:#x} is above 4 GiB", base_addr));
  }

  std::vector<uint8_t> out(sizeof(MpFloatingPointer) + sizeof(MpConfigHeader));
  append_processors(out, num_cpus);
  MpBusEntry bus{};
  bus.type = kMpBus;
  bus.bus_id = kMpIsaBusId;
  std::memcpy(bus.bus_type, "ISA   ", sizeof(bus.bus_type));
  append(out, bus);
  MpIoApicEntry ioapic{};
  ioapic.type = kMpIoApic;
  ioapic.id = ioapic_id;
  ioapic.version = kMpIoApicVersion;
  ioapic.flags = kIoApicEnabled;
  ioapic.address = static_cast<uint32_t>(layout::kIoApicAddr);
  append(out, ioapic);
  // Identity routing ISA IRQ n -> INTIN n matches KVM's default GSI routing.
  for (uint8_t pin = 0; pin < kMpIoApicPins; ++pin) {
    append(out, interrupt_entry({.type = kMpIoInterrupt,
                                 .interrupt_type = kMpInt,
                                 .irq = pin,
                                 .dest_apic = ioapic_id,
                                 .pin = pin}));
  }
  // Virtual wire mode: the 8259 reaches LINT0 as ExtINT, NMI comes on LINT1.
  append(out, interrupt_entry({.type = kMpLocalInterrupt,
                               .interrupt_type = kMpExtInt,
                               .irq = 0,
                               .dest_apic = kMpAllLocalApics,
                               .pin = 0}));
  append(out, interrupt_entry({.type = kMpLocalInterrupt,
                               .interrupt_type = kMpNmi,
                               .irq = 0,
                               .dest_apic = kMpAllLocalApics,
                               .pin = 1}));

  const size_t table_len = out.size() - sizeof(MpFloatingPointer);
  MpConfigHeader hdr{};
  std::memcpy(hdr.signature, "PCMP", 4);
  hdr.length = static_cast<uint16_t>(table_len);
  hdr.spec_rev = kSpecRev14;
  std::memcpy(hdr.oem_id, "MINIVMM ", sizeof(hdr.oem_id));
  std::memcpy(hdr.product_id, "minivmm     ", sizeof(hdr.product_id));
  hdr.entry_count = static_cast<uint16_t>(num_cpus + 2 + kMpIoApicPins + 2);
  hdr.local_apic_addr = static_cast<uint32_t>(layout::kLocalApicAddr);
  std::memcpy(out.data() + sizeof(MpFloatingPointer), &hdr, sizeof(hdr));
  out[sizeof(MpFloatingPointer) + offsetof(MpConfigHeader, checksum)] =
      checksum(out, sizeof(MpFloatingPointer), out.size());

  MpFloatingPointer mpf{};
  std::memcpy(mpf.signature, "_MP_", 4);
  mpf.config_addr = static_cast<uint32_t>(config_addr);
  mpf.length = 1;
  mpf.spec_rev = kSpecRev14;
  std::memcpy(out.data(), &mpf, sizeof(mpf));
  out[offsetof(MpFloatingPointer, checksum)] = checksum(out, 0, sizeof(MpFloatingPointer));
  return out;
}

void write_mptable(const GuestMemory& mem, uint32_t num_cpus) {
  const std::vector<uint8_t> table = build_mptable(num_cpus, layout::kMpTableAddr);
  if (table.size() > layout::kHighMemStart - layout::kMpTableAddr) {
    throw Error(fmt::format("MP table for {} vCPUs is {} bytes, more than fits below 1 MiB",
                            num_cpus, table.size()));
  }
  check_load_range(mem, layout::kMpTableAddr, table.size(), "MP table");
  std::memcpy(mem.translate(layout::kMpTableAddr, table.size()), table.data(), table.size());
}

}  // namespace minivmm
