// Dispatch of port-I/O and MMIO exits to the device that owns the address.
// Accesses nobody owns are not errors: PCs probe many absent ports. Reads
// return all-ones (ports) or zeros (MMIO), writes are dropped, both logged at
// debug level.
#pragma once

#include <cstdint>
#include <vector>

#include "common/mmio_device.h"
#include "common/pio_device.h"

namespace minivmm {

class IoBus {
 public:
  // Ranges must not overlap; throws Error if they do. Devices are not owned.
  void add_pio(uint16_t base, uint16_t size, PioDevice* device);
  void add_mmio(uint64_t base, uint64_t size, MmioDevice* device);

  void pio_read(uint16_t port, uint8_t* data, uint32_t len) const;
  void pio_write(uint16_t port, const uint8_t* data, uint32_t len) const;
  void mmio_read(uint64_t addr, uint8_t* data, uint32_t len) const;
  void mmio_write(uint64_t addr, const uint8_t* data, uint32_t len) const;

 private:
  template <typename Device>
  struct Range {
    uint64_t base;
    uint64_t size;
    Device* device;
  };
  template <typename Device>
  static const Range<Device>* find(const std::vector<Range<Device>>& ranges, uint64_t addr);
  template <typename Device>
  static void add(std::vector<Range<Device>>& ranges, uint64_t base, uint64_t size, Device* d,
                  const char* bus);

  std::vector<Range<PioDevice>> pio_;
  std::vector<Range<MmioDevice>> mmio_;
};

}  // namespace minivmm
