#include "vmm/loader/bzimage_loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "common/error.h"
#include "vmm/x86_64/load_range.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {
namespace {

// boot.rst "THE REAL-MODE KERNEL HEADER": the header starts at 0x1f1 and its
// length is 0x202 + the byte at 0x201 (the jump offset) - 0x1f1.
constexpr size_t kSetupHeaderOffset = 0x1f1;
constexpr size_t kHeaderMagicOffset = 0x202;
constexpr size_t kJumpLengthOffset = 0x201;
constexpr uint32_t kHeaderMagic = 0x53726448;  // "HdrS"
constexpr uint16_t kBootFlag = 0xaa55;
constexpr uint64_t kSectorSize = 512;
// setup_sects == 0 means 4 (boot.rst, note (1) of the header table).
constexpr uint64_t kDefaultSetupSects = 4;
// 2.12 adds xloadflags, which announces the 64-bit entry point.
constexpr uint16_t kXloadflagsProtocol = 0x020c;

static_assert(offsetof(setup_header, header) + kSetupHeaderOffset == kHeaderMagicOffset);
static_assert(offsetof(setup_header, init_size) + kSetupHeaderOffset == 0x260);
static_assert(offsetof(setup_header, xloadflags) + kSetupHeaderOffset == 0x236);

// Bytes of the image's setup header, validated against the file size.
setup_header read_setup_header(std::span<const uint8_t> image, const std::string& name) {
  if (image.size() < kHeaderMagicOffset + sizeof(uint32_t)) {
    throw Error(fmt::format("{}: truncated bzImage ({} bytes): no room for the setup header", name,
                            image.size()));
  }
  uint32_t magic = 0;
  std::memcpy(&magic, image.data() + kHeaderMagicOffset, sizeof(magic));
  if (magic != kHeaderMagic) {
    throw Error(name + ": no \"HdrS\" signature at offset 0x202 (not a bzImage)");
  }
  const size_t header_end = kHeaderMagicOffset + image[kJumpLengthOffset];
  constexpr size_t kNeededEnd =
      kSetupHeaderOffset + offsetof(setup_header, init_size) + sizeof(setup_header::init_size);
  if (header_end > image.size()) {
    throw Error(fmt::format("{}: truncated bzImage: setup header ends at {:#x}, file has {} bytes",
                            name, header_end, image.size()));
  }
  setup_header hdr{};
  const size_t len = std::min(header_end - kSetupHeaderOffset, sizeof(setup_header));
  std::memcpy(&hdr, image.data() + kSetupHeaderOffset, len);
  if (hdr.version < kMinBootProtocol) {
    throw Error(fmt::format("{}: boot protocol {}.{:02} is older than 2.10", name, hdr.version >> 8,
                            hdr.version & 0xff));
  }
  if (header_end < kNeededEnd) {
    throw Error(fmt::format("{}: setup header ends at {:#x}, before init_size (protocol 2.10)",
                            name, header_end));
  }
  if (hdr.boot_flag != kBootFlag) {
    throw Error(
        fmt::format("{}: boot_flag is {:#x}, expected 0xaa55", name, uint16_t{hdr.boot_flag}));
  }
  return hdr;
}

void check_64bit_entry(const setup_header& hdr, const std::string& name) {
  if (!(hdr.loadflags & LOADED_HIGH)) {
    throw Error(name + ": loadflags lacks LOADED_HIGH (zImage loaded at 0x10000 unsupported)");
  }
  if (hdr.version < kXloadflagsProtocol || !(hdr.xloadflags & XLF_KERNEL_64)) {
    throw Error(name + ": kernel has no 64-bit entry point (xloadflags lacks XLF_KERNEL_64)");
  }
}

// boot.rst "init_size": where the kernel runs while it decompresses itself.
uint64_t runtime_start(const setup_header& hdr, uint64_t load_addr, const std::string& name) {
  if (!hdr.relocatable_kernel) return hdr.pref_address;
  const uint64_t align = hdr.kernel_alignment;
  if (align == 0 || (align & (align - 1)) != 0) {
    throw Error(fmt::format("{}: kernel_alignment {:#x} is not a power of two", name, align));
  }
  return checked_add(load_addr, align - 1, name + ": runtime start") & ~(align - 1);
}

}  // namespace

bool is_bzimage(std::span<const uint8_t> image) {
  if (image.size() < kHeaderMagicOffset + sizeof(uint32_t)) return false;
  uint32_t magic = 0;
  std::memcpy(&magic, image.data() + kHeaderMagicOffset, sizeof(magic));
  return magic == kHeaderMagic;
}

BzImageLoadResult load_bzimage(const GuestMemory& mem, std::span<const uint8_t> image,
                               const std::string& name) {
  BzImageLoadResult result;
  result.header = read_setup_header(image, name);
  setup_header& hdr = result.header;
  check_64bit_entry(hdr, name);

  const uint64_t setup_sects = hdr.setup_sects ? hdr.setup_sects : kDefaultSetupSects;
  const uint64_t pm_offset = (setup_sects + 1) * kSectorSize;
  if (pm_offset >= image.size()) {
    throw Error(fmt::format(
        "{}: setup_sects {} puts the protected-mode code at {:#x}, past the end of the file "
        "({} bytes)",
        name, setup_sects, pm_offset, image.size()));
  }
  const uint64_t pm_size = image.size() - pm_offset;
  if (uint64_t{hdr.syssize} * 16 > pm_size) {
    throw Error(
        fmt::format("{}: truncated bzImage: syssize says {} bytes of protected-mode code, "
                    "file has {}",
                    name, uint64_t{hdr.syssize} * 16, pm_size));
  }

  result.load_addr = layout::kBzImageLoadAddr;
  check_load_range(mem, result.load_addr, pm_size, name + ": protected-mode kernel");
  const uint64_t run_start = runtime_start(hdr, result.load_addr, name);
  if (run_start < layout::kHighMemStart) {
    throw Error(fmt::format("{}: kernel runtime address {:#x} is below 1 MiB", name, run_start));
  }
  check_load_range(mem, run_start, hdr.init_size,
                   fmt::format("{}: init_size {:#x} (memory needed to boot)", name,
                               uint32_t{hdr.init_size}));

  std::memcpy(mem.translate(result.load_addr, pm_size), image.data() + pm_offset, pm_size);
  result.kernel_end = std::max(result.load_addr + pm_size, run_start + uint64_t{hdr.init_size});
  result.entry = result.load_addr + kBzImage64BitEntryOffset;
  // boot.rst "relocatable_kernel": the loader points code32_start at the code.
  hdr.code32_start = static_cast<uint32_t>(result.load_addr);
  return result;
}

}  // namespace minivmm
