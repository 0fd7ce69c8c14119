#include "vmm/x86_64/virtio_mmio_slots.h"

#include <fmt/format.h>

#include <iterator>

#include "common/error.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {
namespace {

constexpr size_t kPinCount = std::size(kVirtioIrqs);
constexpr const char* kParamPrefix = "virtio_mmio.device=";

}  // namespace

VirtioMmioSlot virtio_mmio_slot(size_t index, size_t device_count) {
  if (index >= layout::kVirtioMmioSlots) {
    throw Error(fmt::format("virtio-mmio device {}: the MMIO window [{:#x}, {:#x}) has {} slots",
                            index, layout::kVirtioMmioBase, layout::kIoApicAddr,
                            layout::kVirtioMmioSlots));
  }
  VirtioMmioSlot s;
  s.base = layout::virtio_mmio_address(index);
  s.irq = kVirtioIrqs[index % kPinCount];
  // Another device has this pin when one comes kPinCount before or after.
  s.shared = index >= kPinCount || index + kPinCount < device_count;
  return s;
}

std::string virtio_mmio_device_param(const VirtioMmioSlot& slot) {
  return fmt::format("4K@0x{:x}:{}", slot.base, slot.irq);
}

size_t virtio_devices_that_fit(size_t used, size_t limit) {
  size_t n = 0;
  while (n < layout::kVirtioMmioSlots) {
    // A separating space unless the command line is still empty.
    const size_t entry = (used ? 1 : 0) + std::string(kParamPrefix).size() +
                         virtio_mmio_device_param(virtio_mmio_slot(n, n + 1)).size();
    if (used + entry > limit) break;
    used += entry;
    ++n;
  }
  return n;
}

}  // namespace minivmm
