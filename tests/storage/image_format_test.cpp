// Image format detection: a file with another format's header is refused
// under format = auto (the guest would otherwise overwrite that header),
// and served as raw, untouched by the open, when format = raw says so.
#include "storage/image_format.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "storage/disk.h"
#include "test_image.h"

namespace minivmm::storage {
namespace {

using test::open_error;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// A file of `size` zero bytes whose first bytes are `head`.
void make_headed_file(const std::string& path, std::string_view head, uint64_t size) {
  std::vector<char> data(size, 0);
  std::copy(head.begin(), head.end(), data.begin());
  UniqueFd fd(::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd);
  ASSERT_EQ(::pwrite(fd.get(), data.data(), size, 0), static_cast<ssize_t>(size));
}

// The start of a qcow2 version 3 header: magic, version, then zeros.
const std::string_view kQcow2Head("QFI\xfb\0\0\0\3", 8);

DiskOptions opts(const std::string& path, ImageFormat format, CacheMode cache) {
  return {.path = path,
          .cache = cache,
          .engine = IoEngineKind::Sync,
          .format = format,
          .write_log = {}};
}

TEST(ImageFormat, DetectsEachKnownSignature) {
  EXPECT_EQ(detect_foreign_format(kQcow2Head), "qcow2");
  EXPECT_EQ(detect_foreign_format(std::string_view("QED\0\0\0\0\0", 8)), "qed");
  EXPECT_EQ(detect_foreign_format("KDMV...."), "vmdk");
  EXPECT_EQ(detect_foreign_format("vhdxfile and more"), "vhdx");
  EXPECT_EQ(detect_foreign_format(std::string_view("LUKS\xba\xbe\0\1", 8)), "luks");
  std::string vdi(72, 'x');
  vdi.replace(64, 4, "\x7f\x10\xda\xbe");
  EXPECT_EQ(detect_foreign_format(vdi), "vdi");
}

TEST(ImageFormat, RawBytesAndShortHeadsMatchNothing) {
  EXPECT_EQ(detect_foreign_format(std::string(4096, '\0')), std::nullopt);
  EXPECT_EQ(detect_foreign_format(""), std::nullopt);
  EXPECT_EQ(detect_foreign_format("QFI"), std::nullopt);       // magic cut short
  EXPECT_EQ(detect_foreign_format(" QFI\xfb"), std::nullopt);  // not at byte 0
  EXPECT_EQ(detect_foreign_format(std::string(66, 'x') + "\x7f\x10\xda\xbe"), std::nullopt);
}

TEST(ImageFormat, ParsesOnlyTheFormatsServed) {
  EXPECT_EQ(parse_image_format("auto"), ImageFormat::Auto);
  EXPECT_EQ(parse_image_format("raw"), ImageFormat::Raw);
  EXPECT_EQ(parse_image_format("qcow2"), std::nullopt);
  EXPECT_EQ(parse_image_format("RAW"), std::nullopt);
}

TEST(ImageFormat, AutoRefusesAQcow2FileNamingPathFormatAndWayOut) {
  test::TempDir dir;
  const std::string path = dir.file("disk.qcow2");
  make_headed_file(path, kQcow2Head, 65536);
  EXPECT_THAT(open_error(opts(path, ImageFormat::Auto, CacheMode::Writeback)),
              AllOf(HasSubstr(path), HasSubstr("qcow2 header"), HasSubstr("qemu-img convert"),
                    HasSubstr("format = \"raw\"")));
}

// A qcow2 without preallocation is rarely a multiple of 512 bytes: the
// message names the format, not the odd size.
TEST(ImageFormat, FormatIsNamedBeforeAnOddSize) {
  test::TempDir dir;
  const std::string path = dir.file("small.qcow2");
  make_headed_file(path, kQcow2Head, 196616);
  EXPECT_THAT(open_error(opts(path, ImageFormat::Auto, CacheMode::Writeback)),
              AllOf(HasSubstr("qcow2 header"), Not(HasSubstr("multiple of 512"))));
}

// O_DIRECT modes read the header with an aligned buffer.
TEST(ImageFormat, AutoRefusesAQcow2FileOpenedDirect) {
  test::TempDir dir;
  const std::string path = dir.file("direct.qcow2");
  make_headed_file(path, kQcow2Head, 65536);
  EXPECT_THAT(open_error(opts(path, ImageFormat::Auto, CacheMode::None)),
              HasSubstr("qcow2 header"));
}

TEST(ImageFormat, RawServesTheSameFileAndLeavesItsHeaderAlone) {
  test::TempDir dir;
  const std::string path = dir.file("raw-on-purpose.img");
  make_headed_file(path, kQcow2Head, 65536);
  {
    auto disk = Disk::open(opts(path, ImageFormat::Raw, CacheMode::Writeback));
    EXPECT_EQ(disk->size_bytes(), 65536u);
  }
  const std::vector<uint8_t> head = test::read_file(path, 0, kQcow2Head.size());
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(head.data()), head.size()), kQcow2Head);
}

TEST(ImageFormat, AutoServesAnOrdinaryRawImage) {
  test::TempDir dir;
  const std::string path = dir.file("plain.img");
  test::make_image(path, 65536);
  EXPECT_EQ(Disk::open(opts(path, ImageFormat::Auto, CacheMode::None))->size_bytes(), 65536u);
}

// Images made by qemu-img itself, the tool users make them with: each one
// is refused under auto, and opening it does not change a byte of it.
struct QemuImgCase {
  const char* format;
  const char* options;  // qemu-img create -o
};

int shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(ImageFormat, RefusesEveryFormatQemuImgCreatesAndLeavesItUnchanged) {
  if (shell("command -v qemu-img >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "qemu-img not installed (Debian package qemu-utils; scripts/install-deps.sh)";
  }
  const QemuImgCase cases[] = {
      {"qcow2", "preallocation=off"},
      {"qcow2", "preallocation=metadata"},
      {"qcow2", "compat=0.10"},
      {"qed", ""},
      {"vmdk", ""},
      {"vhdx", ""},
      {"vdi", ""},
  };
  test::TempDir dir;
  for (const QemuImgCase& c : cases) {
    SCOPED_TRACE(std::string(c.format) + " " + c.options);
    const std::string path = dir.file(std::string("made.") + c.format);
    const std::string opts_arg = *c.options ? std::string(" -o ") + c.options : "";
    ASSERT_EQ(shell("qemu-img create -q -f " + std::string(c.format) + opts_arg + " " + path +
                    " 16M"),
              0);
    const uint64_t size = std::filesystem::file_size(path);
    const std::vector<uint8_t> before = test::read_file(path, 0, size);
    EXPECT_THAT(open_error(opts(path, ImageFormat::Auto, CacheMode::Writeback)),
                AllOf(HasSubstr(path), HasSubstr(std::string(c.format) + " header")));
    EXPECT_EQ(test::read_file(path, 0, size), before);
    EXPECT_EQ(shell("qemu-img check -q -f " + std::string(c.format) + " " + path +
                    " >/dev/null 2>&1"),
              0);
  }
}

}  // namespace
}  // namespace minivmm::storage
