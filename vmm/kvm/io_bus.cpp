#include "vmm/kvm/io_bus.h"

#include <spdlog/spdlog.h>

#include <cstring>

#include "common/error.h"

namespace minivmm {

template <typename Device>
const IoBus::Range<Device>* IoBus::find(const std::vector<Range<Device>>& ranges, uint64_t addr) {
  for (const auto& r : ranges) {
    if (addr >= r.base && addr - r.base < r.size) return &r;
  }
  return nullptr;
}

template <typename Device>
void IoBus::add(std::vector<Range<Device>>& ranges, uint64_t base, uint64_t size, Device* d,
                const char* bus) {
  for (const auto& r : ranges) {
    if (base < r.base + r.size && r.base < base + size) {
      throw Error(std::string(bus) + " range at " + std::to_string(base) +
                  " overlaps an existing device");
    }
  }
  ranges.push_back({base, size, d});
}

void IoBus::add_pio(uint16_t base, uint16_t size, PioDevice* device) {
  add(pio_, base, size, device, "port I/O");
}

void IoBus::add_mmio(uint64_t base, uint64_t size, MmioDevice* device) {
  add(mmio_, base, size, device, "MMIO");
}

void IoBus::pio_read(uint16_t port, uint8_t* data, uint32_t len) const {
  if (const auto* r = find(pio_, port)) {
    r->device->pio_read(static_cast<uint16_t>(port - r->base), data, len);
    return;
  }
  std::memset(data, 0xff, len);
  SPDLOG_DEBUG("unclaimed port read 0x{:x} ({} bytes)", port, len);
}

void IoBus::pio_write(uint16_t port, const uint8_t* data, uint32_t len) const {
  if (const auto* r = find(pio_, port)) {
    r->device->pio_write(static_cast<uint16_t>(port - r->base), data, len);
    return;
  }
  SPDLOG_DEBUG("unclaimed port write 0x{:x} ({} bytes)", port, len);
}

void IoBus::mmio_read(uint64_t addr, uint8_t* data, uint32_t len) const {
  if (const auto* r = find(mmio_, addr)) {
    r->device->mmio_read(addr - r->base, data, len);
    return;
  }
  std::memset(data, 0, len);
  SPDLOG_DEBUG("unclaimed MMIO read 0x{:x} ({} bytes)", addr, len);
}

void IoBus::mmio_write(uint64_t addr, const uint8_t* data, uint32_t len) const {
  if (const auto* r = find(mmio_, addr)) {
    r->device->mmio_write(addr - r->base, data, len);
    return;
  }
  SPDLOG_DEBUG("unclaimed MMIO write 0x{:x} ({} bytes)", addr, len);
}

}  // namespace minivmm
