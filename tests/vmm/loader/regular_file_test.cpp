#include "vmm/loader/regular_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/error.h"
#include "vmm/loader/mapped_file.h"

namespace minivmm {
namespace {

namespace fs = std::filesystem;

std::string open_error(const std::string& path, uint64_t max_bytes = 1 << 20) {
  try {
    open_regular_file(path, "kernel", max_bytes);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

class RegularFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One directory per process: ctest -j runs this fixture's cases side by side.
    dir_ = fs::path(::testing::TempDir()) / ("regular_file_test" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

TEST_F(RegularFileTest, OpensARegularFileAndGivesItsSize) {
  std::ofstream(path("k")) << "12345";
  const RegularFile f = open_regular_file(path("k"), "kernel", 5);
  EXPECT_TRUE(f.fd);
  EXPECT_EQ(f.size, 5u);
}

TEST_F(RegularFileTest, NamesTheKindOfFileItRefuses) {
  EXPECT_EQ(open_error("/dev/zero"),
            "kernel '/dev/zero' is a character device, not a regular file");
  EXPECT_EQ(open_error(dir_.string()),
            "kernel '" + dir_.string() + "' is a directory, not a regular file");
  ASSERT_EQ(mkfifo(path("fifo").c_str(), 0600), 0);
  // A writer keeps the FIFO open, so even an implementation that opened it
  // would not block here; that no open blocks is the binary test's part.
  const int writer = ::open(path("fifo").c_str(), O_RDWR | O_NONBLOCK);
  ASSERT_GE(writer, 0);
  EXPECT_EQ(open_error(path("fifo")),
            "kernel '" + path("fifo") + "' is a FIFO, not a regular file");
  ::close(writer);
  EXPECT_EQ(open_error(path("missing")),
            "cannot open kernel '" + path("missing") + "': No such file or directory");
}

TEST_F(RegularFileTest, RefusesAFileOverTheLimit) {
  std::ofstream(path("k")) << "123456";
  EXPECT_EQ(open_error(path("k"), 5),
            "kernel '" + path("k") + "' is 6 bytes, over the 5-byte limit");
}

TEST_F(RegularFileTest, MappedFileRefusesAKernelTooLargeToLoad) {
  std::ofstream(path("huge")).close();
  fs::resize_file(path("huge"), kMaxMappedFileBytes + 1);  // sparse: nothing is written
  try {
    const MappedFile f(path("huge"), "kernel");
    FAIL() << "mapped a file over the limit";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("over the 4294967296-byte limit"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace minivmm
