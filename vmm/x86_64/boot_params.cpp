#include "vmm/x86_64/boot_params.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "common/error.h"
#include "vmm/x86_64/load_range.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {
namespace {

// Zero-page ABI (zero-page.rst, boot.rst) checked against the uapi header.
static_assert(sizeof(boot_params) == 0x1000);
static_assert(offsetof(boot_params, ext_ramdisk_image) == 0x0c0);
static_assert(offsetof(boot_params, ext_ramdisk_size) == 0x0c4);
static_assert(offsetof(boot_params, ext_cmd_line_ptr) == 0x0c8);
static_assert(offsetof(boot_params, e820_entries) == 0x1e8);
static_assert(offsetof(boot_params, hdr) == 0x1f1);
static_assert(offsetof(boot_params, e820_table) == 0x2d0);
static_assert(sizeof(boot_e820_entry) == 20);
static_assert(offsetof(boot_params, hdr.boot_flag) == 0x1fe);
static_assert(offsetof(boot_params, hdr.header) == 0x202);
static_assert(offsetof(boot_params, hdr.type_of_loader) == 0x210);
static_assert(offsetof(boot_params, hdr.loadflags) == 0x211);
static_assert(offsetof(boot_params, hdr.ramdisk_image) == 0x218);
static_assert(offsetof(boot_params, hdr.ramdisk_size) == 0x21c);
static_assert(offsetof(boot_params, hdr.heap_end_ptr) == 0x224);
static_assert(offsetof(boot_params, hdr.cmd_line_ptr) == 0x228);
static_assert(offsetof(boot_params, hdr.cmdline_size) == 0x238);

constexpr uint16_t kBootFlag = 0xaa55;
constexpr uint32_t kHeaderMagic = 0x53726448;  // "HdrS"
// boot.rst "type_of_loader": 0xFF means an undefined/unregistered loader.
constexpr uint8_t kLoaderTypeUndefined = 0xff;
// boot.rst "Sample Boot Configuration": heap_end = 0xe000, ptr = end - 0x200.
constexpr uint16_t kHeapEndPtr = 0xe000 - 0x200;
// Boot protocol version that introduced cmdline_size.
constexpr uint16_t kCmdlineSizeProtocol = 0x0206;

uint32_t low32(uint64_t v) { return static_cast<uint32_t>(v); }
uint32_t high32(uint64_t v) { return static_cast<uint32_t>(v >> 32); }

void fill_e820(boot_params& bp, uint64_t ram_size) {
  const std::vector<E820Entry> map = build_e820_map(ram_size);
  if (map.size() > E820_MAX_ENTRIES_ZEROPAGE) {
    throw Error(fmt::format("e820 map has {} entries, the zero page holds {}", map.size(),
                            E820_MAX_ENTRIES_ZEROPAGE));
  }
  bp.e820_entries = static_cast<uint8_t>(map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    bp.e820_table[i].addr = map[i].addr;
    bp.e820_table[i].size = map[i].size;
    bp.e820_table[i].type = static_cast<uint32_t>(map[i].type);
  }
}

void check_cmdline(const BootParamsConfig& config) {
  const uint64_t max_len = max_cmdline_length(config.kernel_header);
  if (config.cmdline.size() > max_len) {
    throw Error(fmt::format("kernel command line is {} characters, the kernel accepts at most {}",
                            config.cmdline.size(), max_len));
  }
  if (config.cmdline.find('\0') != std::string::npos) {
    throw Error("kernel command line contains a NUL byte");
  }
}

}  // namespace

std::vector<E820Entry> build_e820_map(uint64_t ram_size) {
  if (ram_size <= layout::kHighMemStart) {
    throw Error(fmt::format("RAM size {:#x} is too small: it must extend past 1 MiB", ram_size));
  }
  std::vector<E820Entry> map = {
      {0, layout::kEbdaStart, E820Type::kRam},
      {layout::kEbdaStart, layout::kHighMemStart - layout::kEbdaStart, E820Type::kReserved},
  };
  const uint64_t low_end = layout::low_ram_end(ram_size);
  map.push_back({layout::kHighMemStart, low_end - layout::kHighMemStart, E820Type::kRam});
  if (ram_size > layout::kMmioHoleStart) {
    map.push_back({layout::kHighRamStart, ram_size - layout::kMmioHoleStart, E820Type::kRam});
  }
  return map;
}

uint64_t max_cmdline_length(const std::optional<setup_header>& kernel_header) {
  constexpr uint64_t kBufferLimit = layout::kCmdlineMax - 1;
  if (!kernel_header) return std::min(kVmlinuxCommandLineSize - 1, kBufferLimit);
  // Before 2.06 the limit was 255 characters (boot.rst "cmdline_size").
  const uint64_t kernel_limit =
      kernel_header->version >= kCmdlineSizeProtocol ? kernel_header->cmdline_size : 255;
  return std::min(kernel_limit, kBufferLimit);
}

void write_rng_seed(const GuestMemory& mem, const std::vector<uint8_t>& seed) {
  const uint64_t size = sizeof(setup_data) + seed.size();
  if (size > layout::kSetupDataMax) {
    throw Error(fmt::format("RNG seed of {} bytes does not fit the setup_data area", seed.size()));
  }
  check_load_range(mem, layout::kSetupDataAddr, size, "setup_data");
  setup_data header{};
  header.next = 0;
  header.type = SETUP_RNG_SEED;
  header.len = static_cast<uint32_t>(seed.size());
  uint8_t* p = mem.translate(layout::kSetupDataAddr, size);
  std::memcpy(p, &header, sizeof(header));
  std::memcpy(p + sizeof(header), seed.data(), seed.size());
}

boot_params build_boot_params(const BootParamsConfig& config) {
  check_cmdline(config);
  boot_params bp{};
  if (config.kernel_header) {
    bp.hdr = *config.kernel_header;
  } else {
    bp.hdr.boot_flag = kBootFlag;
    bp.hdr.header = kHeaderMagic;
    bp.hdr.cmdline_size = static_cast<uint32_t>(kVmlinuxCommandLineSize - 1);
  }
  // Loader-written fields (boot.rst, "write" / "modify" entries).
  bp.hdr.type_of_loader = kLoaderTypeUndefined;
  bp.hdr.loadflags |= LOADED_HIGH | CAN_USE_HEAP;
  bp.hdr.heap_end_ptr = kHeapEndPtr;
  bp.hdr.cmd_line_ptr = low32(layout::kCmdlineAddr);
  bp.ext_cmd_line_ptr = high32(layout::kCmdlineAddr);
  bp.hdr.ramdisk_image = low32(config.initrd_addr);
  bp.hdr.ramdisk_size = low32(config.initrd_size);
  bp.ext_ramdisk_image = high32(config.initrd_addr);
  bp.ext_ramdisk_size = high32(config.initrd_size);
  fill_e820(bp, config.ram_size);
  if (!config.rng_seed.empty()) bp.hdr.setup_data = layout::kSetupDataAddr;
  return bp;
}

void write_boot_params(const GuestMemory& mem, const BootParamsConfig& config) {
  const boot_params bp = build_boot_params(config);
  check_load_range(mem, layout::kZeroPageAddr, sizeof(bp), "zero page");
  check_load_range(mem, layout::kCmdlineAddr, layout::kCmdlineMax, "kernel command line");
  // The whole buffer is cleared: vmlinux copies COMMAND_LINE_SIZE bytes.
  uint8_t* cmdline = mem.translate(layout::kCmdlineAddr, layout::kCmdlineMax);
  std::memset(cmdline, 0, layout::kCmdlineMax);
  // NOLINTNEXTLINE(bugprone-not-null-terminated-result): the memset above is the terminator
  std::memcpy(cmdline, config.cmdline.data(), config.cmdline.size());
  mem.write(layout::kZeroPageAddr, bp);
  if (!config.rng_seed.empty()) write_rng_seed(mem, config.rng_seed);
}

}  // namespace minivmm
