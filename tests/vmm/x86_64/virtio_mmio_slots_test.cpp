// Device placement for many disks: windows, pins (distinct, then shared),
// the MP table entries behind every pin, and the kernel command line limit.
#include "vmm/x86_64/virtio_mmio_slots.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "vmm/machine.h"
#include "vmm/x86_64/boot_params.h"
#include "vmm/x86_64/memory_layout.h"
#include "vmm/x86_64/mptable.h"

namespace minivmm {
namespace {

std::vector<std::string> params(size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(virtio_mmio_device_param(virtio_mmio_slot(i, n)));
  return out;
}

TEST(VirtioMmioSlotsTest, FirstSeventeenDevicesGetTheirOwnPin) {
  std::set<uint32_t> pins;
  for (size_t i = 0; i < 17; ++i) {
    const VirtioMmioSlot s = virtio_mmio_slot(i, 17);
    EXPECT_EQ(s.base, 0xd0000000u + i * 0x1000);
    EXPECT_FALSE(s.shared) << i;
    pins.insert(s.irq);
  }
  EXPECT_EQ(pins.size(), 17u);
  EXPECT_EQ(pins,
            (std::set<uint32_t>{5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}));
  // The first nine keep the ISA IRQs they always had.
  EXPECT_EQ(virtio_mmio_device_param(virtio_mmio_slot(0, 1)), "4K@0xd0000000:5");
  EXPECT_EQ(virtio_mmio_device_param(virtio_mmio_slot(8, 9)), "4K@0xd0008000:15");
  EXPECT_EQ(virtio_mmio_device_param(virtio_mmio_slot(9, 10)), "4K@0xd0009000:16");
}

TEST(VirtioMmioSlotsTest, ThirtyTwoDisksSharePinsEvenly) {
  std::map<uint32_t, int> users;
  for (size_t i = 0; i < 32; ++i) {
    const VirtioMmioSlot s = virtio_mmio_slot(i, 32);
    ++users[s.irq];
    EXPECT_EQ(s.shared, i < 15 || i >= 17) << i << ": 0-14 pair with 17-31, 15 and 16 alone";
  }
  for (const auto& [pin, n] : users) EXPECT_LE(n, 2) << "pin " << pin;
}

TEST(VirtioMmioSlotsTest, EveryPinHasAnEdgeTriggeredMpTableEntry) {
  // What Linux reads (mpparse.c): an I/O interrupt entry for the pin, whose
  // flags 0 "conform to the bus" (ISA: edge, active high), so each irqfd
  // signal is an edge and sharing cannot lose one.
  const std::vector<uint8_t> t = build_mptable(4, layout::kMpTableAddr);
  const size_t first = sizeof(MpFloatingPointer) + sizeof(MpConfigHeader) +
                       4 * sizeof(MpProcessorEntry) + sizeof(MpBusEntry) + sizeof(MpIoApicEntry);
  std::map<uint8_t, MpInterruptEntry> by_pin;
  for (size_t off = first; off + sizeof(MpInterruptEntry) <= t.size();
       off += sizeof(MpInterruptEntry)) {
    MpInterruptEntry e;
    std::memcpy(&e, t.data() + off, sizeof(e));
    if (e.type == kMpIoInterrupt) by_pin[e.dest_pin] = e;
  }
  for (uint32_t irq : kVirtioIrqs) {
    ASSERT_TRUE(by_pin.count(static_cast<uint8_t>(irq))) << "pin " << irq;
    const MpInterruptEntry& e = by_pin[static_cast<uint8_t>(irq)];
    EXPECT_EQ(e.interrupt_type, kMpInt);
    EXPECT_EQ(e.source_bus_irq, irq);
    EXPECT_EQ(e.flags, 0) << "conforms to the ISA bus: edge, active high";
    EXPECT_EQ(e.dest_apic_id, 4) << "the I/O APIC";
  }
}

TEST(VirtioMmioSlotsTest, CommandLineFitMatchesTheBuiltCommandLine) {
  const uint64_t limit = kVmlinuxCommandLineSize - 1;
  for (const std::string base :
       {"", "console=ttyS0", "console=ttyS0 reboot=k panic=-1 minivmm_agent.exit_status=0"}) {
    for (bool pvm : {false, true}) {
      const std::string rest = build_kernel_cmdline(base, pvm, {});
      const size_t fit = virtio_devices_that_fit(rest.size(), limit);
      EXPECT_LE(build_kernel_cmdline(base, pvm, params(fit)).size(), limit) << rest;
      EXPECT_GT(build_kernel_cmdline(base, pvm, params(fit + 1)).size(), limit) << rest;
      EXPECT_GE(fit, 32u) << "32 disks fit with " << rest;
    }
  }
}

TEST(VirtioMmioSlotsTest, TheRealLimitIsTheCommandLine) {
  // With nothing else on it, 57 entries fit 2047 characters; with
  // configs/default.toml's "console=ttyS0", 56; with the PVM flags too, 55.
  EXPECT_EQ(virtio_devices_that_fit(0, kVmlinuxCommandLineSize - 1), 57u);
  EXPECT_EQ(virtio_devices_that_fit(std::string("console=ttyS0").size(), 2047), 56u);
  EXPECT_EQ(virtio_devices_that_fit(build_kernel_cmdline("console=ttyS0", true, {}).size(), 2047),
            55u);
  // Far below the MMIO window and KVM's 1000 I/O bus devices (NR_IOBUS_DEVS,
  // one ioeventfd per queue, at most 16 queues a disk).
  EXPECT_LT(57u, layout::kVirtioMmioSlots);
  EXPECT_LT(57u * 16, 1000u);
}

TEST(VirtioMmioSlotsTest, RefusesSlotsPastTheMmioWindow) {
  EXPECT_NO_THROW(virtio_mmio_slot(layout::kVirtioMmioSlots - 1, layout::kVirtioMmioSlots));
  EXPECT_LT(layout::virtio_mmio_address(layout::kVirtioMmioSlots - 1) + 0x1000,
            layout::kIoApicAddr + 1);
  EXPECT_THROW(virtio_mmio_slot(layout::kVirtioMmioSlots, layout::kVirtioMmioSlots + 1), Error);
}

}  // namespace
}  // namespace minivmm
