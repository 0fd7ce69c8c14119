#include "vmm/loader/elf_loader.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "common/error.h"
#include "tests/vmm/loader/built_guest.h"
#include "vmm/kvm/guest_ram.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {
namespace {

constexpr uint64_t kRamSize = 64ULL << 20;
constexpr uint64_t kVirtBase = 0xffffffff81000000ULL;

struct Segment {
  uint32_t type = PT_LOAD;
  uint64_t paddr = 0;
  uint64_t vaddr = 0;
  std::vector<uint8_t> data;  // file contents (p_filesz bytes)
  uint64_t memsz = 0;
};

// A minimal ELF64 x86_64 ET_EXEC: header, program headers, then each
// segment's bytes in order.
std::vector<uint8_t> make_elf(const std::vector<Segment>& segs, uint64_t entry) {
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_entry = entry;
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = static_cast<uint16_t>(segs.size());

  std::vector<uint8_t> out(sizeof(eh) + segs.size() * sizeof(Elf64_Phdr));
  std::memcpy(out.data(), &eh, sizeof(eh));
  for (size_t i = 0; i < segs.size(); ++i) {
    Elf64_Phdr ph{};
    ph.p_type = segs[i].type;
    ph.p_offset = out.size();
    ph.p_paddr = segs[i].paddr;
    ph.p_vaddr = segs[i].vaddr;
    ph.p_filesz = segs[i].data.size();
    ph.p_memsz = segs[i].memsz;
    ph.p_align = 0x1000;
    std::memcpy(out.data() + sizeof(eh) + i * sizeof(ph), &ph, sizeof(ph));
    out.insert(out.end(), segs[i].data.begin(), segs[i].data.end());
  }
  return out;
}

Elf64_Phdr* phdr(std::vector<uint8_t>& image, size_t i) {
  return reinterpret_cast<Elf64_Phdr*>(image.data() + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}
Elf64_Ehdr* ehdr(std::vector<uint8_t>& image) {
  return reinterpret_cast<Elf64_Ehdr*>(image.data());
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

// A Xen PVH entry note: namesz 4 ("Xen\0"), descsz, type 18.
std::vector<uint8_t> pvh_note(uint64_t entry, uint32_t descsz) {
  std::vector<uint8_t> n(12 + 4 + descsz);
  const uint32_t hdr[3] = {4, descsz, 18};
  std::memcpy(n.data(), hdr, sizeof(hdr));
  std::memcpy(n.data() + 12, "Xen", 4);
  std::memcpy(n.data() + 16, &entry, descsz);
  return n;
}

// Two loadable segments (text with bss-like tail, data) plus a PVH note.
std::vector<Segment> good_segments() {
  return {
      {PT_LOAD, 0x200000, kVirtBase, pattern(0x300, 1), 0x2000},
      {PT_NOTE, 0, 0, pvh_note(0x200040, 4), 0},
      {PT_LOAD, 0x400000, kVirtBase + 0x200000, pattern(0x100, 9), 0x100},
  };
}

void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an Error containing \"" << needle << "\"";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << "message: " << msg;
    EXPECT_NE(msg.find("kernel.elf"), std::string::npos) << "message lacks the file name: " << msg;
  }
}

class ElfLoaderTest : public ::testing::Test {
 protected:
  ElfLoaderTest() : ram_(kRamSize) { std::memset(ram_.data() + 0x200000, 0xaa, 0x300000); }
  void expect_load_error(const std::vector<uint8_t>& image, const std::string& needle) {
    expect_error([&] { load_elf_kernel(ram_.view(), image, "kernel.elf"); }, needle);
  }
  GuestRamMapping ram_;
};

TEST_F(ElfLoaderTest, LoadsSegmentsAtPhysicalAddressesAndZeroFillsBss) {
  const auto segs = good_segments();
  const auto image = make_elf(segs, 0x200010);
  const ElfLoadResult r = load_elf_kernel(ram_.view(), image, "kernel.elf");

  EXPECT_EQ(r.entry, 0x200010u);
  EXPECT_EQ(r.kernel_start, 0x200000u);
  EXPECT_EQ(r.kernel_end, 0x400100u);
  ASSERT_TRUE(r.pvh_entry.has_value());
  EXPECT_EQ(*r.pvh_entry, 0x200040u);
  EXPECT_EQ(std::memcmp(ram_.data() + 0x200000, segs[0].data.data(), 0x300), 0);
  for (uint64_t a = 0x200300; a < 0x202000; ++a) ASSERT_EQ(ram_.data()[a], 0) << std::hex << a;
  EXPECT_EQ(ram_.data()[0x202000], 0xaa) << "wrote past p_memsz";
  EXPECT_EQ(std::memcmp(ram_.data() + 0x400000, segs[2].data.data(), 0x100), 0);
}

TEST_F(ElfLoaderTest, TranslatesKernelVirtualEntryThroughItsSegment) {
  const auto image = make_elf(good_segments(), kVirtBase + 0x10);
  EXPECT_EQ(load_elf_kernel(ram_.view(), image, "kernel.elf").entry, 0x200010u);
  const auto second = make_elf(good_segments(), kVirtBase + 0x200020);
  EXPECT_EQ(load_elf_kernel(ram_.view(), second, "kernel.elf").entry, 0x400020u);
}

TEST_F(ElfLoaderTest, ReadsEightBytePvhNoteAndToleratesItsAbsence) {
  auto segs = good_segments();
  segs[1].data = pvh_note(0x1234567, 8);
  EXPECT_EQ(load_elf_kernel(ram_.view(), make_elf(segs, 0x200000), "k").pvh_entry, 0x1234567u);
  segs.erase(segs.begin() + 1);
  EXPECT_FALSE(load_elf_kernel(ram_.view(), make_elf(segs, 0x200000), "k").pvh_entry.has_value());
}

TEST_F(ElfLoaderTest, RejectsEntryOutsideSegments) {
  expect_load_error(make_elf(good_segments(), 0x300000), "entry point 0x300000");
  expect_load_error(make_elf(good_segments(), kVirtBase + 0x100000), "entry point");
}

TEST_F(ElfLoaderTest, RejectsBadMagic) {
  auto image = make_elf(good_segments(), 0x200000);
  image[1] = 'X';
  expect_load_error(image, "bad ELF magic");
  EXPECT_FALSE(is_elf_image(image));
}

TEST_F(ElfLoaderTest, Rejects32BitClass) {
  auto image = make_elf(good_segments(), 0x200000);
  image[EI_CLASS] = ELFCLASS32;
  expect_load_error(image, "not ELFCLASS64");
}

TEST_F(ElfLoaderTest, RejectsWrongMachine) {
  auto image = make_elf(good_segments(), 0x200000);
  ehdr(image)->e_machine = EM_AARCH64;
  expect_load_error(image, "not x86_64");
}

TEST_F(ElfLoaderTest, RejectsNonExecutableType) {
  auto image = make_elf(good_segments(), 0x200000);
  ehdr(image)->e_type = ET_DYN;
  expect_load_error(image, "not ET_EXEC");
}

TEST_F(ElfLoaderTest, RejectsTruncatedHeader) {
  auto image = make_elf(good_segments(), 0x200000);
  image.resize(40);
  expect_load_error(image, "truncated ELF header");
}

TEST_F(ElfLoaderTest, RejectsProgramHeaderTableOutsideFile) {
  auto image = make_elf(good_segments(), 0x200000);
  ehdr(image)->e_phoff = image.size() - 10;
  expect_load_error(image, "program header table");
  ehdr(image)->e_phoff = UINT64_MAX - 8;  // offset + size wraps
  expect_load_error(image, "program header table");
}

TEST_F(ElfLoaderTest, RejectsFileSizeLargerThanMemSize) {
  auto image = make_elf(good_segments(), 0x200000);
  phdr(image, 0)->p_memsz = 0x100;
  expect_load_error(image, "p_filesz 0x300 exceeds p_memsz 0x100");
}

TEST_F(ElfLoaderTest, RejectsSegmentDataOutsideFile) {
  auto image = make_elf(good_segments(), 0x200000);
  phdr(image, 2)->p_offset = image.size() - 0x80;
  expect_load_error(image, "past the end of the file");
}

TEST_F(ElfLoaderTest, RejectsFileOffsetPlusSizeOverflow) {
  auto image = make_elf(good_segments(), 0x200000);
  phdr(image, 0)->p_offset = UINT64_MAX - 0x10;
  expect_load_error(image, "overflows 64 bits");
}

TEST_F(ElfLoaderTest, RejectsPhysicalAddressPlusSizeOverflow) {
  auto image = make_elf(good_segments(), 0x200000);
  phdr(image, 2)->p_paddr = UINT64_MAX - 0x10;
  expect_load_error(image, "overflows 64 bits");
}

TEST_F(ElfLoaderTest, RejectsSegmentOutsideRam) {
  auto image = make_elf(good_segments(), 0x200000);
  phdr(image, 2)->p_paddr = kRamSize - 0x80;  // 0x100 bytes straddle the end
  expect_load_error(image, "outside guest RAM");
}

TEST_F(ElfLoaderTest, RejectsSegmentBelowOneMiB) {
  auto image = make_elf(good_segments(), 0x200000);
  phdr(image, 2)->p_paddr = 0x7000;  // would overwrite the zero page
  expect_load_error(image, "below 1 MiB");
}

TEST_F(ElfLoaderTest, RejectsOverlappingSegments) {
  auto image = make_elf(good_segments(), 0x200000);
  phdr(image, 2)->p_paddr = 0x201000;
  expect_load_error(image, "overlap");
}

TEST_F(ElfLoaderTest, RejectsImageWithoutLoadSegments) {
  auto image = make_elf({{PT_NOTE, 0, 0, pvh_note(1, 4), 0}}, 0x200000);
  expect_load_error(image, "no PT_LOAD");
}

TEST_F(ElfLoaderTest, RejectsTruncatedNote) {
  auto segs = good_segments();
  segs[1].data.resize(14);  // header says 4 + 4 more bytes than present
  expect_load_error(make_elf(segs, 0x200000), "note");
}

TEST_F(ElfLoaderTest, FailedLoadLeavesGuestMemoryUntouched) {
  auto image = make_elf(good_segments(), 0x200000);
  phdr(image, 2)->p_paddr = kRamSize;  // only the last segment is bad
  expect_load_error(image, "outside guest RAM");
  for (uint64_t a = 0x200000; a < 0x200300; ++a) ASSERT_EQ(ram_.data()[a], 0xaa);
}

TEST(ElfLoaderHoleTest, RejectsSegmentOverlappingMmioHole) {
  // 5 GiB of address space, untouched pages cost nothing (MAP_NORESERVE).
  GuestRamMapping ram(5ULL << 30);
  auto image = make_elf({{PT_LOAD, layout::kMmioHoleStart - 0x1000, 0, pattern(16, 0), 0x2000}},
                        layout::kMmioHoleStart - 0x1000);
  expect_error([&] { load_elf_kernel(ram.view(), image, "kernel.elf"); }, "MMIO hole");
  auto above = make_elf({{PT_LOAD, 0x100000000ULL, 0, pattern(16, 0), 0x1000}}, 0x100000000ULL);
  expect_error([&] { load_elf_kernel(ram.view(), above, "kernel.elf"); }, "outside guest RAM");
}

// The real guest kernel, when one has been built. Synthetic images above
// cover every path; this checks the layout assumptions (physical e_entry,
// PVH note) against the actual 6.1 vmlinux.
TEST(ElfLoaderRealKernelTest, LoadsBuiltVmlinux) {
  std::vector<uint8_t> image;
  const std::string path = test::read_built_guest_file("vmlinux", image);
  if (image.empty()) {
    GTEST_SKIP() << "no guest kernel at " << path << " (build it with scripts/build-guest.sh)";
  }

  GuestRamMapping ram(512ULL << 20);
  const ElfLoadResult r = load_elf_kernel(ram.view(), image, path);
  EXPECT_GE(r.kernel_start, layout::kHighMemStart);
  EXPECT_GE(r.entry, r.kernel_start);
  EXPECT_LT(r.entry, r.kernel_end);
  EXPECT_EQ(r.entry, 0x1000000u) << "6.1 vmlinux: e_entry is phys_startup_64 at 16 MiB";
  EXPECT_TRUE(r.pvh_entry.has_value()) << "kernel.config enables PVH";
}

}  // namespace
}  // namespace minivmm
