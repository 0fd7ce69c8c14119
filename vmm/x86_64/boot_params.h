// The zero page (struct boot_params, Documentation/x86/zero-page.rst) and the
// e820 memory map handed to a Linux guest entered through the 64-bit boot
// protocol, plus the kernel command line it points at.
#pragma once

#include <asm/bootparam.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/guest_memory.h"

namespace minivmm {

// e820 region types (ACPI address range types).
enum class E820Type : uint32_t { kRam = 1, kReserved = 2 };

struct E820Entry {
  uint64_t addr = 0;
  uint64_t size = 0;
  E820Type type = E820Type::kRam;
  bool operator==(const E820Entry&) const = default;
};

// The memory map for `ram_size` bytes of RAM laid out as in memory_layout.h:
// [0, 0x9fc00) RAM, [0x9fc00, 1 MiB) reserved, [1 MiB, min(ram, 3 GiB)) RAM,
// and [4 GiB, 4 GiB + ram - 3 GiB) RAM when ram > 3 GiB.
std::vector<E820Entry> build_e820_map(uint64_t ram_size);

// x86 COMMAND_LINE_SIZE (arch/x86/include/asm/setup.h), used for vmlinux,
// which carries no setup header and copies at most this many bytes.
inline constexpr uint64_t kVmlinuxCommandLineSize = 2048;

struct BootParamsConfig {
  uint64_t ram_size = 0;
  std::string cmdline;
  // The bzImage's setup header; nullopt for a vmlinux ELF.
  std::optional<setup_header> kernel_header;
  uint64_t initrd_addr = 0;  // 0 / 0: no initrd
  uint64_t initrd_size = 0;
  // Bytes for a SETUP_RNG_SEED setup_data entry (boot.rst "setup_data"),
  // seeding the guest's RNG so it need not gather entropy at boot (under
  // emulation that gathering cost seconds of blake2s). Empty: none.
  std::vector<uint8_t> rng_seed;
};

// Longest command line (characters, without the NUL) the kernel accepts:
// the header's cmdline_size (protocol 2.06+), bounded by our buffer.
uint64_t max_cmdline_length(const std::optional<setup_header>& kernel_header);

// Builds the zero page as plain data. Throws on a command line that is too
// long or contains a NUL byte, or a RAM size too small for the layout.
boot_params build_boot_params(const BootParamsConfig& config);

// Writes build_boot_params(config) at layout::kZeroPageAddr and the command
// line at layout::kCmdlineAddr.
void write_boot_params(const GuestMemory& mem, const BootParamsConfig& config);

}  // namespace minivmm
