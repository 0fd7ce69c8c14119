#include "vmm/x86_64/boot_params.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "vmm/kvm/guest_ram.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;
constexpr uint64_t kGiB = 1ULL << 30;

template <typename T>
T at(const boot_params& bp, size_t offset) {
  T v;
  std::memcpy(&v, reinterpret_cast<const uint8_t*>(&bp) + offset, sizeof(T));
  return v;
}

std::string error_of(const BootParamsConfig& config) {
  try {
    build_boot_params(config);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(E820MapTest, SmallRamHasLowRamReservedEbdaAndHighRam) {
  const std::vector<E820Entry> expected = {
      {0, 0x9fc00, E820Type::kRam},
      {0x9fc00, 0x100000 - 0x9fc00, E820Type::kReserved},
      {0x100000, 64 * kMiB - 0x100000, E820Type::kRam},
  };
  EXPECT_EQ(build_e820_map(64 * kMiB), expected);
}

TEST(E820MapTest, ExactlyThreeGiBEndsAtTheMmioHole) {
  const auto map = build_e820_map(3 * kGiB);
  ASSERT_EQ(map.size(), 3u);
  EXPECT_EQ(map[2].addr + map[2].size, layout::kMmioHoleStart);
}

TEST(E820MapTest, RamAboveThreeGiBContinuesAtFourGiB) {
  const auto map = build_e820_map(8 * kGiB);
  ASSERT_EQ(map.size(), 4u);
  EXPECT_EQ(map[2], (E820Entry{0x100000, 3 * kGiB - 0x100000, E820Type::kRam}));
  EXPECT_EQ(map[3], (E820Entry{4 * kGiB, 5 * kGiB, E820Type::kRam}));
  uint64_t ram = 0;
  for (const auto& e : map) {
    if (e.type == E820Type::kRam) ram += e.size;
    EXPECT_FALSE(e.addr < layout::kMmioHoleEnd && e.addr + e.size > layout::kMmioHoleStart)
        << "entry at " << e.addr << " overlaps the MMIO hole";
  }
  EXPECT_EQ(ram, 8 * kGiB - (0x100000 - 0x9fc00)) << "all RAM except the EBDA/BIOS area";
}

// RAM sizes that reach past the 32-bit MMIO hole: every byte of RAM is in the map exactly once,
// below the hole or from 4 GiB up, and the zero page carries the map.
class E820LargeRamTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(E820LargeRamTest, AllRamIsMappedAroundTheHole) {
  const uint64_t ram = GetParam();
  const auto map = build_e820_map(ram);
  ASSERT_EQ(map.size(), 4u);
  EXPECT_EQ(map[2], (E820Entry{0x100000, 3 * kGiB - 0x100000, E820Type::kRam}));
  EXPECT_EQ(map[3], (E820Entry{4 * kGiB, ram - 3 * kGiB, E820Type::kRam}));
  EXPECT_EQ(map[3].addr + map[3].size, layout::ram_top(ram));
  uint64_t usable = 0;
  for (const auto& e : map) usable += e.type == E820Type::kRam ? e.size : 0;
  EXPECT_EQ(usable, ram - (0x100000 - 0x9fc00));

  BootParamsConfig config;
  config.ram_size = ram;
  const boot_params bp = build_boot_params(config);
  ASSERT_EQ(bp.e820_entries, 4);
  EXPECT_EQ(at<uint64_t>(bp, 0x2d0 + 3 * 20), 4 * kGiB);            // addr
  EXPECT_EQ(at<uint64_t>(bp, 0x2d0 + 3 * 20 + 8), ram - 3 * kGiB);  // size
  EXPECT_EQ(at<uint32_t>(bp, 0x2d0 + 3 * 20 + 16), 1u);             // E820_TYPE_RAM
}

INSTANTIATE_TEST_SUITE_P(Sizes, E820LargeRamTest,
                         ::testing::Values(3 * kGiB + kMiB, 4 * kGiB, 5 * kGiB, 16 * kGiB,
                                           1024 * kGiB));

TEST(E820MapTest, RejectsRamThatEndsBelowOneMiB) {
  EXPECT_THROW(build_e820_map(kMiB), Error);
  EXPECT_THROW(build_e820_map(0x9fc00), Error);
}

TEST(BootParamsTest, VmlinuxZeroPageHasProtocolFieldsAtTheirOffsets) {
  BootParamsConfig config;
  config.ram_size = 128 * kMiB;
  config.cmdline = "console=ttyS0";
  config.initrd_addr = 0x7000000;
  config.initrd_size = 0x123456;
  const boot_params bp = build_boot_params(config);

  EXPECT_EQ(at<uint16_t>(bp, 0x1fe), 0xaa55);  // boot_flag
  EXPECT_EQ(std::memcmp(reinterpret_cast<const uint8_t*>(&bp) + 0x202, "HdrS", 4), 0);
  EXPECT_EQ(at<uint8_t>(bp, 0x210), 0xff);  // type_of_loader
  EXPECT_EQ(at<uint8_t>(bp, 0x211), LOADED_HIGH | CAN_USE_HEAP);
  EXPECT_EQ(at<uint16_t>(bp, 0x224), 0xde00);      // heap_end_ptr
  EXPECT_EQ(at<uint32_t>(bp, 0x228), 0x20000u);    // cmd_line_ptr
  EXPECT_EQ(at<uint32_t>(bp, 0x0c8), 0u);          // ext_cmd_line_ptr
  EXPECT_EQ(at<uint32_t>(bp, 0x218), 0x7000000u);  // ramdisk_image
  EXPECT_EQ(at<uint32_t>(bp, 0x21c), 0x123456u);   // ramdisk_size
  EXPECT_EQ(at<uint8_t>(bp, 0x1e8), 3);            // e820_entries
  // e820_table at 0x2d0, 20-byte entries: {addr u64, size u64, type u32}.
  EXPECT_EQ(at<uint64_t>(bp, 0x2d0 + 20 * 2), 0x100000u);
  EXPECT_EQ(at<uint64_t>(bp, 0x2d0 + 20 * 2 + 8), 127 * kMiB);
  EXPECT_EQ(at<uint32_t>(bp, 0x2d0 + 20 * 1 + 16), 2u);  // EBDA reserved
  EXPECT_EQ(at<uint32_t>(bp, 0x2d0 + 20 * 3 + 16), 0u) << "no fourth entry";
}

TEST(BootParamsTest, InitrdAddressAbove4GiBUsesExtFields) {
  BootParamsConfig config;
  config.ram_size = 64 * kMiB;
  config.initrd_addr = 0x123456789000ULL;
  config.initrd_size = 0x100000000ULL + 5;
  const boot_params bp = build_boot_params(config);
  EXPECT_EQ(at<uint32_t>(bp, 0x218), 0x56789000u);
  EXPECT_EQ(at<uint32_t>(bp, 0x0c0), 0x1234u);  // ext_ramdisk_image
  EXPECT_EQ(at<uint32_t>(bp, 0x21c), 5u);
  EXPECT_EQ(at<uint32_t>(bp, 0x0c4), 1u);  // ext_ramdisk_size
}

TEST(BootParamsTest, BzImageHeaderIsKeptAndLoaderFieldsOverwritten) {
  setup_header h{};
  h.setup_sects = 27;
  h.boot_flag = 0xaa55;
  h.header = 0x53726448;
  h.version = 0x020f;
  h.loadflags = LOADED_HIGH | KASLR_FLAG;
  h.type_of_loader = 0x21;
  h.init_size = 0x2000000;
  h.cmdline_size = 2047;
  h.xloadflags = XLF_KERNEL_64;
  BootParamsConfig config;
  config.ram_size = 64 * kMiB;
  config.kernel_header = h;
  const boot_params bp = build_boot_params(config);
  EXPECT_EQ(bp.hdr.setup_sects, 27);
  EXPECT_EQ(bp.hdr.version, 0x020f);
  EXPECT_EQ(bp.hdr.init_size, 0x2000000u);
  EXPECT_EQ(bp.hdr.xloadflags, XLF_KERNEL_64);
  EXPECT_EQ(bp.hdr.type_of_loader, 0xff);
  EXPECT_EQ(bp.hdr.loadflags, LOADED_HIGH | KASLR_FLAG | CAN_USE_HEAP);
  EXPECT_EQ(bp.hdr.cmd_line_ptr, 0x20000u);
}

TEST(BootParamsTest, CommandLineLimitFollowsTheKernel) {
  BootParamsConfig config;
  config.ram_size = 64 * kMiB;
  config.cmdline = std::string(2047, 'a');  // vmlinux: COMMAND_LINE_SIZE 2048 incl. NUL
  EXPECT_NO_THROW(build_boot_params(config));
  config.cmdline += 'a';
  EXPECT_NE(error_of(config).find("at most 2047"), std::string::npos) << error_of(config);

  setup_header h{};
  h.version = 0x020f;
  h.cmdline_size = 300;
  config.kernel_header = h;
  config.cmdline = std::string(300, 'b');
  EXPECT_NO_THROW(build_boot_params(config));
  config.cmdline += 'b';
  EXPECT_NE(error_of(config).find("at most 300"), std::string::npos);

  h.cmdline_size = 100000;  // bounded by our 4 KiB buffer
  config.kernel_header = h;
  EXPECT_EQ(max_cmdline_length(h), layout::kCmdlineMax - 1);
  h.version = 0x0205;  // before cmdline_size existed: 255
  EXPECT_EQ(max_cmdline_length(h), 255u);
}

TEST(BootParamsTest, RejectsNulInCommandLine) {
  BootParamsConfig config;
  config.ram_size = 64 * kMiB;
  config.cmdline = std::string("root=/dev/vda\0evil", 18);
  EXPECT_NE(error_of(config).find("NUL"), std::string::npos);
}

TEST(BootParamsTest, WritesZeroPageAndClearedCommandLineBuffer) {
  GuestRamMapping ram(64 * kMiB);
  std::memset(ram.data() + layout::kCmdlineAddr, 'x', layout::kCmdlineMax + 16);
  BootParamsConfig config;
  config.ram_size = ram.size();
  config.cmdline = "console=ttyS0 noxsave";
  write_boot_params(ram.view(), config);

  const char* cmdline = reinterpret_cast<const char*>(ram.data() + layout::kCmdlineAddr);
  EXPECT_STREQ(cmdline, "console=ttyS0 noxsave");
  for (uint64_t i = config.cmdline.size(); i < layout::kCmdlineMax; ++i) ASSERT_EQ(cmdline[i], 0);
  EXPECT_EQ(cmdline[layout::kCmdlineMax], 'x') << "wrote past the command line buffer";
  const boot_params expected = build_boot_params(config);
  EXPECT_EQ(std::memcmp(ram.data() + layout::kZeroPageAddr, &expected, sizeof(expected)), 0);
}

TEST(BootParamsTest, WriteRefusesMemoryWithoutRoomForTheCommandLine) {
  GuestRamMapping ram(layout::kCmdlineAddr + 0x10);
  BootParamsConfig config;
  config.ram_size = 64 * kMiB;
  EXPECT_THROW(write_boot_params(ram.view(), config), Error);
}

TEST(BootParamsTest, RngSeedIsLinkedAsSetupData) {
  GuestRamMapping ram(64 * kMiB);
  BootParamsConfig config;
  config.ram_size = ram.size();
  config.cmdline = "console=ttyS0";
  EXPECT_EQ(build_boot_params(config).hdr.setup_data, 0u);  // no seed, no list
  config.rng_seed = {1, 2, 3, 4, 5, 6, 7, 8};
  write_boot_params(ram.view(), config);
  const uint64_t list = at<uint64_t>(build_boot_params(config), 0x250);  // hdr.setup_data
  ASSERT_EQ(list, layout::kSetupDataAddr);
  const uint8_t* sd = ram.data() + list;
  uint64_t next;
  uint32_t type, len;
  std::memcpy(&next, sd, 8);
  std::memcpy(&type, sd + 8, 4);
  std::memcpy(&len, sd + 12, 4);
  EXPECT_EQ(next, 0u);
  EXPECT_EQ(type, 9u);  // SETUP_RNG_SEED
  ASSERT_EQ(len, 8u);
  EXPECT_EQ(std::memcmp(sd + 16, config.rng_seed.data(), 8), 0);
  config.rng_seed.assign(layout::kSetupDataMax, 0);  // does not fit with its header
  EXPECT_THROW(write_boot_params(ram.view(), config), Error);
}

// The kernel reads setup_data in setup_arch, after it has started using the
// low RAM the e820 map calls usable: the entry must lie in one RAM range and
// clear of the other boot data there, or one write corrupts the other.
TEST(BootParamsTest, SetupDataAreaIsUsableRamClearOfOtherBootData) {
  const uint64_t begin = layout::kSetupDataAddr;
  const uint64_t end = begin + layout::kSetupDataMax;
  bool in_ram = false;
  for (const E820Entry& e : build_e820_map(64 * kMiB)) {
    in_ram |= e.type == E820Type::kRam && e.addr <= begin && end <= e.addr + e.size;
  }
  EXPECT_TRUE(in_ram);
  const std::pair<uint64_t, uint64_t> others[] = {
      {layout::kGdtAddr, layout::kGdtEntryCount * 8},
      {layout::kZeroPageAddr, layout::kZeroPageSize},
      {layout::kPml4Addr, layout::kPageTableSize * (2 + layout::kPdCount)},
      {layout::kCmdlineAddr, layout::kCmdlineMax},
      {layout::kMpTableAddr, layout::kHighMemStart - layout::kMpTableAddr},
  };
  for (const auto& [addr, size] : others) {
    EXPECT_TRUE(end <= addr || addr + size <= begin) << std::hex << "overlaps 0x" << addr;
  }
}

}  // namespace
}  // namespace minivmm
