// Loads the protected-mode part of a bzImage for the 64-bit boot protocol
// (Documentation/x86/boot.rst): code at 1 MiB, entry at load address + 0x200.
#pragma once

#include <asm/bootparam.h>

#include <cstdint>
#include <span>
#include <string>

#include "common/guest_memory.h"

namespace minivmm {

// Oldest boot protocol accepted: 2.10 adds pref_address and init_size.
inline constexpr uint16_t kMinBootProtocol = 0x020a;
// The 64-bit entry point is startup_64, 0x200 past the load address.
inline constexpr uint64_t kBzImage64BitEntryOffset = 0x200;

struct BzImageLoadResult {
  uint64_t entry = 0;       // 64-bit entry point (load_addr + 0x200)
  uint64_t load_addr = 0;   // where the protected-mode code was copied
  uint64_t kernel_end = 0;  // one past the memory the kernel needs to boot (init_size)
  // The image's setup header (bytes 0x1f1 .. 0x202 + image[0x201]); boot
  // loader fields are filled in later by the zero-page builder.
  setup_header header{};
};

// Validates `image` (named `name` in errors), copies its protected-mode code
// to 1 MiB in `mem` and checks that init_size fits in RAM.
BzImageLoadResult load_bzimage(const GuestMemory& mem, std::span<const uint8_t> image,
                               const std::string& name);

// True when `image` carries the "HdrS" boot-protocol signature at 0x202.
bool is_bzimage(std::span<const uint8_t> image);

}  // namespace minivmm
