#include "vmm/loader/initrd.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "vmm/x86_64/load_range.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {
namespace {
constexpr uint64_t kPageSize = 0x1000;
}  // namespace

InitrdPlacement place_initrd(uint64_t ram_size, uint64_t kernel_end, uint64_t size,
                             uint64_t initrd_addr_max, const std::string& name) {
  if (size == 0) throw Error(name + ": initrd is empty");
  // initrd_addr_max names the last usable byte, hence the + 1.
  const uint64_t limit = initrd_addr_max == UINT64_MAX ? UINT64_MAX : initrd_addr_max + 1;
  const uint64_t top = std::min(limit, layout::low_ram_end(ram_size));
  const uint64_t bottom = std::max(kernel_end, layout::kHighMemStart);
  if (top < bottom || size > top - bottom) {
    throw Error(
        fmt::format("{}: initrd of {} bytes does not fit between the kernel end {:#x} and {:#x} "
                    "(RAM {} bytes, initrd_addr_max {:#x})",
                    name, size, bottom, top, ram_size, initrd_addr_max));
  }
  const uint64_t addr = (top - size) & ~(kPageSize - 1);
  if (addr < bottom) {
    throw Error(fmt::format("{}: initrd of {} bytes would overlap the kernel (ends at {:#x})", name,
                            size, kernel_end));
  }
  return {addr, size};
}

InitrdPlacement load_initrd(const GuestMemory& mem, std::span<const uint8_t> initrd,
                            uint64_t kernel_end, uint64_t initrd_addr_max,
                            const std::string& name) {
  const InitrdPlacement p =
      place_initrd(mem.size(), kernel_end, initrd.size(), initrd_addr_max, name);
  check_load_range(mem, p.addr, p.size, name);
  std::memcpy(mem.translate(p.addr, p.size), initrd.data(), p.size);
  return p;
}

}  // namespace minivmm
