#include "vmm/loader/bzimage_loader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/error.h"
#include "tests/vmm/loader/built_guest.h"
#include "vmm/kvm/guest_ram.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {
namespace {

constexpr uint64_t kRamSize = 64ULL << 20;
constexpr size_t kHeaderOffset = 0x1f1;
constexpr uint64_t kPmSize = 0x3000;

// Setup header of a modern (2.15) relocatable 64-bit kernel.
setup_header good_header(uint8_t setup_sects) {
  setup_header h{};
  h.setup_sects = setup_sects;
  h.syssize = kPmSize / 16;
  h.boot_flag = 0xaa55;
  h.jump = 0x66eb;  // "jmp short +0x66": header ends at 0x202 + 0x66 = 0x268
  h.header = 0x53726448;
  h.version = 0x020f;
  h.loadflags = LOADED_HIGH;
  h.initrd_addr_max = 0x7fffffff;
  h.kernel_alignment = 0x200000;
  h.relocatable_kernel = 1;
  h.min_alignment = 21;
  h.xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
  h.cmdline_size = 2047;
  h.pref_address = 0x1000000;
  h.init_size = 0x800000;
  return h;
}

// Boot sector + setup sectors, then kPmSize bytes of "protected-mode code".
std::vector<uint8_t> make_bzimage(const setup_header& h, uint64_t setup_sects_in_file) {
  std::vector<uint8_t> image((setup_sects_in_file + 1) * 512 + kPmSize);
  // Stated, so GCC's -Wstringop-overflow (tsan preset, -O1) sees the room.
  if (image.size() < kHeaderOffset + sizeof(h)) throw std::logic_error("bzImage too small");
  std::memcpy(image.data() + kHeaderOffset, &h, sizeof(h));
  for (uint64_t i = (setup_sects_in_file + 1) * 512; i < image.size(); ++i) {
    image[i] = static_cast<uint8_t>(i * 13 + 5);
  }
  return image;
}

std::vector<uint8_t> good_image() { return make_bzimage(good_header(4), 4); }

class BzImageLoaderTest : public ::testing::Test {
 protected:
  BzImageLoaderTest() : ram_(kRamSize) {}
  void expect_load_error(const std::vector<uint8_t>& image, const std::string& needle,
                         uint64_t ram_size = kRamSize) {
    GuestRamMapping ram(ram_size);
    try {
      load_bzimage(ram.view(), image, "bzImage");
      ADD_FAILURE() << "expected an Error containing \"" << needle << "\"";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(needle), std::string::npos) << "message: " << msg;
      EXPECT_NE(msg.find("bzImage"), std::string::npos) << "message lacks the name: " << msg;
    }
  }
  GuestRamMapping ram_;
};

TEST_F(BzImageLoaderTest, CopiesProtectedModeCodeToOneMiB) {
  const auto image = good_image();
  ASSERT_TRUE(is_bzimage(image));
  const BzImageLoadResult r = load_bzimage(ram_.view(), image, "bzImage");

  EXPECT_EQ(r.load_addr, 0x100000u);
  EXPECT_EQ(r.entry, 0x100200u) << "64-bit entry is load address + 0x200";
  EXPECT_EQ(std::memcmp(ram_.data() + 0x100000, image.data() + 5L * 512, kPmSize), 0);
  // Relocatable: runtime start is 1 MiB aligned up to 2 MiB, plus init_size.
  EXPECT_EQ(r.kernel_end, 0x200000u + 0x800000u);
  EXPECT_EQ(r.header.version, 0x020f);
  EXPECT_EQ(r.header.init_size, 0x800000u);
  EXPECT_EQ(r.header.cmdline_size, 2047u);
  EXPECT_EQ(r.header.initrd_addr_max, 0x7fffffffu);
  EXPECT_EQ(r.header.code32_start, 0x100000u);
}

TEST_F(BzImageLoaderTest, SetupSectsZeroMeansFour) {
  const auto image = make_bzimage(good_header(0), 4);
  load_bzimage(ram_.view(), image, "bzImage");
  EXPECT_EQ(std::memcmp(ram_.data() + 0x100000, image.data() + 5L * 512, kPmSize), 0);
}

TEST_F(BzImageLoaderTest, NonRelocatableKernelNeedsInitSizeAtPrefAddress) {
  setup_header h = good_header(4);
  h.relocatable_kernel = 0;
  h.pref_address = 0x1000000;
  EXPECT_EQ(load_bzimage(ram_.view(), make_bzimage(h, 4), "bzImage").kernel_end, 0x1800000u);
  h.pref_address = kRamSize - 0x100000;  // init_size runs past the end of RAM
  expect_load_error(make_bzimage(h, 4), "init_size");
}

TEST_F(BzImageLoaderTest, CopiesOnlyTheHeaderLengthTheImageDeclares) {
  setup_header h = good_header(4);
  h.jump = 0x62eb;  // header ends at 0x264: handover_offset is not part of it
  h.handover_offset = 0x12345;
  EXPECT_EQ(load_bzimage(ram_.view(), make_bzimage(h, 4), "bzImage").header.handover_offset, 0u);
}

TEST_F(BzImageLoaderTest, RejectsMissingHdrS) {
  auto image = good_image();
  image[0x202] = 'X';
  EXPECT_FALSE(is_bzimage(image));
  expect_load_error(image, "no \"HdrS\"");
}

TEST_F(BzImageLoaderTest, RejectsOldBootProtocol) {
  setup_header h = good_header(4);
  h.version = 0x0209;
  expect_load_error(make_bzimage(h, 4), "boot protocol 2.09 is older than 2.10");
}

TEST_F(BzImageLoaderTest, RejectsTruncatedFile) {
  auto image = good_image();
  image.resize(0x204);
  expect_load_error(image, "truncated bzImage");
  image = good_image();
  image.resize(0x240);  // "HdrS" present, header (to 0x268) cut off
  expect_load_error(image, "truncated bzImage");
}

TEST_F(BzImageLoaderTest, RejectsSetupSectsPastEndOfFile) {
  setup_header h = good_header(100);
  auto image = make_bzimage(h, 4);  // file holds 4 setup sectors, header claims 100
  expect_load_error(image, "setup_sects 100");
}

TEST_F(BzImageLoaderTest, RejectsProtectedModeCodeShorterThanSyssize) {
  auto image = good_image();
  image.resize(image.size() - 0x100);
  expect_load_error(image, "syssize");
}

TEST_F(BzImageLoaderTest, RejectsInitSizeTooBigForRam) {
  setup_header h = good_header(4);
  h.init_size = 0x10000000;  // 256 MiB kernel footprint in 64 MiB of RAM
  expect_load_error(make_bzimage(h, 4), "init_size 0x10000000");
}

TEST_F(BzImageLoaderTest, RejectsImageLargerThanRam) {
  expect_load_error(good_image(), "protected-mode kernel", 0x101000);
}

TEST_F(BzImageLoaderTest, RejectsKernelWithoutLoadedHigh) {
  setup_header h = good_header(4);
  h.loadflags = 0;
  expect_load_error(make_bzimage(h, 4), "LOADED_HIGH");
}

TEST_F(BzImageLoaderTest, RejectsKernelWithout64BitEntry) {
  setup_header h = good_header(4);
  h.xloadflags = 0;
  expect_load_error(make_bzimage(h, 4), "XLF_KERNEL_64");
  h = good_header(4);
  h.version = 0x020b;  // 2.11 has no xloadflags field
  expect_load_error(make_bzimage(h, 4), "XLF_KERNEL_64");
}

TEST_F(BzImageLoaderTest, RejectsBadBootFlag) {
  setup_header h = good_header(4);
  h.boot_flag = 0x1234;
  expect_load_error(make_bzimage(h, 4), "boot_flag");
}

TEST_F(BzImageLoaderTest, RejectsNonPowerOfTwoAlignment) {
  setup_header h = good_header(4);
  h.kernel_alignment = 0x300000;
  expect_load_error(make_bzimage(h, 4), "kernel_alignment");
}

// The real guest bzImage, when scripts/build-guest.sh has built one: the
// synthetic images above cover every path; this checks a real 6.1 header.
TEST(BzImageRealKernelTest, LoadsBuiltBzImage) {
  std::vector<uint8_t> image;
  const std::string path = test::read_built_guest_file("bzImage", image);
  if (image.empty()) {
    GTEST_SKIP() << "no guest bzImage at " << path << " (build it with scripts/build-guest.sh)";
  }
  GuestRamMapping ram(512ULL << 20);
  const BzImageLoadResult r = load_bzimage(ram.view(), image, path);
  EXPECT_EQ(r.entry, 0x100200u);
  EXPECT_GE(r.header.version, 0x020f) << "6.1 speaks boot protocol 2.15";
  EXPECT_TRUE(r.header.xloadflags & XLF_KERNEL_64);
  // A relocatable kernel runs from 1 MiB aligned up to kernel_alignment.
  const uint64_t align = r.header.kernel_alignment;
  const uint64_t runtime_start = (r.load_addr + align - 1) & ~(align - 1);
  EXPECT_GE(r.kernel_end, runtime_start + r.header.init_size);
}

}  // namespace
}  // namespace minivmm
