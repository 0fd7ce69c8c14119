// Opening images: clear errors before the guest starts, OFD locking, and the
// real open flags (O_DIRECT, O_RDONLY; never O_DSYNC: durability is per write).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "storage/disk.h"
#include "test_image.h"

namespace minivmm::storage {
namespace {

using test::open_error;
using test::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;

DiskOptions opts(const std::string& path, CacheMode mode = CacheMode::Writeback,
                 bool read_only = false) {
  DiskOptions o;
  o.path = path;
  o.cache = mode;
  o.read_only = read_only;
  o.engine = IoEngineKind::Sync;
  return o;
}

TEST(ImageOpen, MissingFileNamesThePath) {
  TempDir dir;
  const std::string path = dir.file("nope.img");
  EXPECT_THAT(open_error(opts(path)), AllOf(HasSubstr(path), HasSubstr("no such file")));
}

TEST(ImageOpen, DirectoryIsRefused) {
  TempDir dir;
  EXPECT_THAT(open_error(opts(dir.path())), AllOf(HasSubstr(dir.path()), HasSubstr("directory")));
}

TEST(ImageOpen, EmptyFileIsRefused) {
  TempDir dir;
  const std::string path = dir.file("empty.img");
  test::make_image(path, 0);
  EXPECT_THAT(open_error(opts(path)), AllOf(HasSubstr(path), HasSubstr("empty")));
}

TEST(ImageOpen, SizeNotAMultipleOf512NamesTheSize) {
  TempDir dir;
  const std::string path = dir.file("odd.img");
  test::make_image(path, 1000);
  EXPECT_THAT(open_error(opts(path)), AllOf(HasSubstr(path), HasSubstr("1000")));
}

TEST(ImageOpen, NonImageFileTypeIsRefused) {
  TempDir dir;
  const std::string path = dir.file("fifo");
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  EXPECT_THAT(open_error(opts(path)), HasSubstr("neither a regular file nor a block device"));
}

// Root ignores file modes, so as root the check runs in a child that drops
// to nobody.
TEST(ImageOpen, UnreadableFileIsReportedAsPermission) {
  TempDir dir;
  const std::string path = dir.file("secret.img");
  test::make_image(path, 4096);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  if (::geteuid() != 0) {  // not root: the owner itself loses access
    ASSERT_EQ(::chmod(path.c_str(), 0000), 0);
    EXPECT_THAT(open_error(opts(path, CacheMode::Writeback, true)),
                AllOf(HasSubstr(path), HasSubstr("permission")));
    return;
  }
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(pipefd[0]);
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) _exit(2);
    const std::string msg = open_error(opts(path, CacheMode::Writeback, true));
    (void)!::write(pipefd[1], msg.data(), msg.size());
    _exit(0);
  }
  ::close(pipefd[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) msg.append(buf, n);
  ::close(pipefd[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child could not drop privileges";
  EXPECT_THAT(msg, AllOf(HasSubstr(path), HasSubstr("permission")));
}

TEST(ImageLock, SecondReadWriteOpenFailsNamingPathAndHolder) {
  TempDir dir;
  const std::string path = dir.file("disk.img");
  test::make_image(path, 65536);
  auto first = Disk::open(opts(path));
  EXPECT_THAT(open_error(opts(path)), AllOf(HasSubstr(path), HasSubstr("another process")));
  EXPECT_THAT(open_error(opts(path, CacheMode::Writeback, true)), HasSubstr("locked"));
  first.reset();
  EXPECT_NO_THROW(Disk::open(opts(path)));  // the lock went with the fd
}

TEST(ImageLock, TwoReadOnlyOpensShareButBlockAWriter) {
  TempDir dir;
  const std::string path = dir.file("disk.img");
  test::make_image(path, 65536);
  auto a = Disk::open(opts(path, CacheMode::Writeback, true));
  auto b = Disk::open(opts(path, CacheMode::None, true));
  EXPECT_TRUE(a->read_only());
  EXPECT_TRUE(b->read_only());
  EXPECT_THAT(open_error(opts(path)), HasSubstr("locked"));
}

TEST(ImageOpen, ReportsSizeAndBlockSize) {
  TempDir dir;
  const std::string path = dir.file("disk.img");
  test::make_image(path, 3UL * 4096);
  auto disk = Disk::open(opts(path, CacheMode::None));
  EXPECT_EQ(disk->size_bytes(), 3u * 4096);
  const uint32_t lbs = disk->logical_block_size();
  EXPECT_TRUE(lbs == 512 || lbs == 1024 || lbs == 2048 || lbs == 4096) << lbs;
  EXPECT_EQ(disk->configured_mode(), CacheMode::None);
}

struct FlagCase {
  CacheMode mode;
  bool read_only;
};

class ImageFdFlags : public ::testing::TestWithParam<FlagCase> {};

TEST_P(ImageFdFlags, MatchTheModeInProcFdinfo) {
  TempDir dir;
  const std::string path = dir.file("disk.img");
  test::make_image(path, 65536);
  const FlagCase c = GetParam();
  EXPECT_EQ(test::find_fd_for(path), -1);
  auto disk = Disk::open(opts(path, c.mode, c.read_only));
  const int fd = test::find_fd_for(path);
  ASSERT_GE(fd, 0);
  const unsigned long flags = test::fdinfo_flags(fd);
  EXPECT_EQ((flags & O_DIRECT) != 0, traits(c.mode).direct) << std::oct << flags;
  EXPECT_EQ(flags & O_ACCMODE, c.read_only ? O_RDONLY : O_RDWR) << std::oct << flags;
  // Durability is per write (RWF_DSYNC), so the fd itself never has O_DSYNC.
  EXPECT_EQ(flags & O_DSYNC, 0u) << std::oct << flags;
  EXPECT_NE(flags & O_CLOEXEC, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    AllModes, ImageFdFlags,
    ::testing::Values(FlagCase{CacheMode::Writeback, false}, FlagCase{CacheMode::None, false},
                      FlagCase{CacheMode::Writethrough, false},
                      FlagCase{CacheMode::Directsync, false}, FlagCase{CacheMode::Unsafe, false},
                      FlagCase{CacheMode::None, true}, FlagCase{CacheMode::Writeback, true}),
    [](const auto& test_param) {
      return std::string(to_string(test_param.param.mode)) +
             (test_param.param.read_only ? "_ro" : "_rw");
    });

}  // namespace
}  // namespace minivmm::storage
