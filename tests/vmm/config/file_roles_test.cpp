#include "vmm/config/file_roles.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace minivmm {
namespace {

namespace fs = std::filesystem;

class FileRolesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One directory per process: ctest -j runs this fixture's cases side by side.
    dir_ = fs::path(::testing::TempDir()) / ("file_roles_test" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    config_.kernel = file("vmlinux");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string file(const std::string& name) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p) << name;
    return p;
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void add_disk(const std::string& p, bool read_only = false, const std::string& log = "") {
    DiskConfig d;
    d.path = p;
    d.read_only = read_only;
    d.write_log = log;
    config_.disks.push_back(d);
  }
  // check_run_files' message, "" when it accepts the files.
  std::string error(const std::string& config_path = "") const {
    try {
      check_run_files(config_, config_path);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
  VmConfig config_;
};

TEST_F(FileRolesTest, AcceptsDistinctFilesAndLogsThatDoNotExistYet) {
  add_disk(file("a.img"), false, path("a.wlog"));
  add_disk(file("b.img"), true, file("b.wlog"));
  config_.serial_log = path("console.log");
  EXPECT_EQ(error(), "");
  EXPECT_FALSE(fs::exists(path("console.log")));  // checked, not created
}

TEST_F(FileRolesTest, LogNamingAnInputIsRefusedHoweverItIsSpelled) {
  add_disk(file("a.img"));
  fs::create_symlink(path("a.img"), path("link.img"));
  fs::create_hard_link(path("a.img"), path("hard.img"));
  for (const std::string& log :
       {path("a.img"), path("link.img"), path("hard.img"), (dir_ / "." / "a.img").string()}) {
    config_.serial_log = log;
    EXPECT_EQ(error(), "serial log '" + log + "' is the same file as disk 0's image '" +
                           path("a.img") + "': writing the log would destroy it");
  }
}

TEST_F(FileRolesTest, LogNamingTheKernelInitrdConfigOrSystemMapIsRefused) {
  config_.initrd = file("initrd");
  config_.system_map = file("System.map");
  const std::string config_file = file("vm.toml");
  for (const auto& [victim, role] :
       {std::pair{config_.kernel, "kernel"}, std::pair{config_.initrd, "initrd"},
        std::pair{config_.system_map, "System.map"}, std::pair{config_file, "config file"}}) {
    config_.serial_log = victim;
    EXPECT_NE(error(config_file).find(std::string("is the same file as ") + role + " '" + victim),
              std::string::npos)
        << error(config_file);
  }
}

TEST_F(FileRolesTest, TwoLogsNamingOneFileAreRefusedEvenBeforeItExists) {
  add_disk(file("a.img"), false, path("new.log"));
  config_.serial_log = (dir_ / "." / "new.log").string();
  EXPECT_EQ(error(), "disk 0's write log '" + path("new.log") +
                         "' is the same file as serial log '" + config_.serial_log +
                         "': writing the log would destroy it");
}

TEST_F(FileRolesTest, LogNamingAnImageThatDoesNotExistYetIsRefused) {
  // The log would be created first and then opened as the image.
  add_disk(file("a.img"), false, path("b.img"));
  add_disk(path("b.img"));
  fs::remove(path("b.img"));
  EXPECT_EQ(error(), "disk 0's write log '" + path("b.img") +
                         "' is the same file as disk 1's image '" + path("b.img") +
                         "': writing the log would destroy it");
}

TEST_F(FileRolesTest, WriteLogNamingAnotherDisksImageIsRefused) {
  add_disk(file("a.img"), false, path("b.img"));
  add_disk(file("b.img"), true);
  EXPECT_NE(error().find("disk 0's write log '" + path("b.img") +
                         "' is the same file as disk 1's image"),
            std::string::npos)
      << error();
}

TEST_F(FileRolesTest, OneImageTwiceNeedsBothDisksReadOnly) {
  add_disk(file("a.img"), true);
  add_disk((dir_ / "." / "a.img").string(), true);
  EXPECT_EQ(error(), "");
  config_.disks[1].read_only = false;
  EXPECT_EQ(error(), "disk 1 '" + config_.disks[1].path + "' is the same file as disk 0 '" +
                         path("a.img") +
                         "': an image can back only one disk unless all of them are read-only");
}

TEST_F(FileRolesTest, LogThatCannotBeCreatedNamesThePathAndWhy) {
  config_.serial_log = path("missing/console.log");
  EXPECT_EQ(error(), "cannot create serial log '" + config_.serial_log + "': directory '" +
                         path("missing") + "': No such file or directory");
  config_.serial_log = path("vmlinux/console.log");
  EXPECT_EQ(error(), "cannot reach serial log '" + config_.serial_log + "': Not a directory");
  config_.serial_log = dir_.string();
  EXPECT_EQ(error(), "serial log '" + dir_.string() + "' is a directory, not a regular file");
}

TEST_F(FileRolesTest, NonRegularKernelInitrdAndLogsAreRefusedButAWriteLogMayBeAFifo) {
  ASSERT_EQ(mkfifo(path("fifo").c_str(), 0600), 0);
  config_.kernel = path("fifo");
  EXPECT_EQ(error(), "kernel '" + path("fifo") + "' is a FIFO, not a regular file");
  EXPECT_THROW(check_run_files(config_, ""), BootFileError);
  config_.kernel = file("vmlinux");
  config_.initrd = "/dev/null";
  EXPECT_EQ(error(), "initrd '/dev/null' is a character device, not a regular file");
  EXPECT_THROW(check_run_files(config_, ""), BootFileError);
  config_.initrd = "";
  config_.serial_log = path("fifo");
  EXPECT_EQ(error(), "serial log '" + path("fifo") + "' is a FIFO, not a regular file");
  EXPECT_THROW(check_run_files(config_, ""), ConfigError);
  config_.serial_log = "";
  add_disk(file("a.img"), false, path("fifo"));  // a reader process takes the log as written
  EXPECT_EQ(error(), "");
  config_.disks[0].write_log = "/dev/null";
  EXPECT_EQ(error(),
            "disk 0's write log '/dev/null' is a character device, not a regular file or a FIFO");
}

TEST_F(FileRolesTest, ApiSocketMayBeNewOrAnOldSocketButNoOtherFile) {
  config_.api_socket = path("api.sock");
  EXPECT_EQ(error(), "");
  EXPECT_FALSE(fs::exists(path("api.sock")));  // checked, not created
  config_.api_socket = file("notes.txt");
  EXPECT_EQ(error(), "API socket '" + path("notes.txt") +
                         "' is a regular file, not a socket: refusing to replace it");
  config_.api_socket = dir_.string();
  EXPECT_EQ(error(), "API socket '" + dir_.string() +
                         "' is a directory, not a socket: refusing to replace it");
  config_.api_socket = path("console.log");
  config_.serial_log = path("console.log");
  EXPECT_EQ(error(), "API socket '" + path("console.log") + "' is the same file as serial log '" +
                         path("console.log") + "': creating the socket would destroy it");
}

TEST_F(FileRolesTest, MissingInputsAreLeftToWhoOpensThem) {
  config_.kernel = path("no-vmlinux");
  add_disk(path("no-disk.img"));
  EXPECT_EQ(error(), "");
}

}  // namespace
}  // namespace minivmm
