// Where each virtio-mmio device lives and how the guest learns of it.
//
// Device `index` gets the 4 KiB register window at virtio_mmio_address(index)
// and an I/O APIC pin from kVirtioIrqs, round robin. The first 17 devices get
// a pin each; from the 18th on, devices share pins. Sharing is legal for
// virtio-mmio: the driver registers its handler IRQF_SHARED and each handler
// reads its own device's InterruptStatus register, returning IRQ_NONE when
// that is 0 (virtio v1.2 4.2.2, drivers/virtio/virtio_mmio.c vm_interrupt).
// The pins are edge triggered (ISA bus, mptable.cpp) and every irqfd signal
// is its own edge, so a device that raises its status while the shared
// handler runs causes another interrupt rather than being missed.
//
// Linux on x86 without ACPI learns of virtio-mmio devices only from the
// kernel command line, one `virtio_mmio.device=4K@0xd0000000:5` entry (about
// 36 characters) each, and keeps at most COMMAND_LINE_SIZE - 1 = 2047
// characters of it (arch/x86/include/asm/setup.h). That, not the MMIO window
// (191488 slots) or the pins (shared without bound), limits the number of
// disks: about (2047 - the rest of the command line) / 36, so 56 with
// configs/default.toml's command line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace minivmm {

// I/O APIC pins free for virtio-mmio: the ISA IRQs nothing else uses (0-2
// PIT, keyboard and cascade; 3 COM2 and 4 COM1; 8 RTC; 13 FPU) and pins
// 16-23, which KVM's I/O APIC has (KVM_IOAPIC_NUM_PINS 24) and the MP table
// describes (mptable.cpp), as Firecracker uses them.
inline constexpr uint32_t kVirtioIrqs[] = {5,  6,  7,  9,  10, 11, 12, 14, 15,
                                           16, 17, 18, 19, 20, 21, 22, 23};

struct VirtioMmioSlot {
  uint64_t base = 0;    // guest physical address of the register window
  uint32_t irq = 0;     // GSI = I/O APIC pin = Linux IRQ number
  bool shared = false;  // another device has the same pin
};

// Throws Error past the MMIO window.
VirtioMmioSlot virtio_mmio_slot(size_t index, size_t device_count);

// The value of the `virtio_mmio.device=` kernel parameter for `slot`
// (drivers/virtio/virtio_mmio.c: <size>@<baseaddr>:<irq>).
std::string virtio_mmio_device_param(const VirtioMmioSlot& slot);

// How many devices' `virtio_mmio.device=` entries fit on a command line that
// already holds `used` characters, when the kernel keeps at most `limit`.
size_t virtio_devices_that_fit(size_t used, size_t limit);

}  // namespace minivmm
