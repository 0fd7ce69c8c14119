#include "vmm/config/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <utility>
#include <vector>

#include <filesystem>
#include <fstream>
#include <string>

#include "vmm/config/cli.h"

namespace minivmm {
namespace {

// Expects parse_config to fail with a message containing every fragment.
void expect_error(const std::string& toml, std::initializer_list<std::string> fragments) {
  try {
    parse_config(toml, "test.toml");
    FAIL() << "accepted:\n" << toml;
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
  }
}

TEST(Config, DefaultsWhenEmpty) {
  const VmConfig c = parse_config("", "test.toml");
  EXPECT_EQ(c.memory_mib, 64u);
  EXPECT_EQ(c.vcpus, 1u);
  EXPECT_EQ(c.pvm_workarounds, PvmWorkarounds::Auto);
  EXPECT_TRUE(c.disks.empty());
}

TEST(Config, ParsesEverySection) {
  const VmConfig c = parse_config(R"(
[machine]
memory_mib = 256
vcpus = 2
[kernel]
path = "/k/vmlinux"
initrd = "/k/initrd"
cmdline = "console=ttyS0 quiet"
pvm_workarounds = "off"
[serial]
log_file = "/tmp/console.log"
stdin = false
[log]
level = "debug"
[debug]
rip_sample_ms = 20
system_map = "/k/System.map"
[[disk]]
path = "/d/a.img"
cache = "none"
serial = "disk-a"
queues = 2
[[disk]]
path = "/d/b.img"
cache = "unsafe"
read_only = true
io_engine = "sync"
)",
                                  "test.toml");
  EXPECT_EQ(c.memory_mib, 256u);
  EXPECT_EQ(c.vcpus, 2u);
  EXPECT_EQ(c.kernel, "/k/vmlinux");
  EXPECT_EQ(c.initrd, "/k/initrd");
  EXPECT_EQ(c.cmdline, "console=ttyS0 quiet");
  EXPECT_EQ(c.pvm_workarounds, PvmWorkarounds::Off);
  EXPECT_EQ(c.serial_log, "/tmp/console.log");
  EXPECT_FALSE(c.serial_stdin);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.rip_sample_ms, 20u);
  ASSERT_EQ(c.disks.size(), 2u);
  EXPECT_EQ(c.disks[0].cache, storage::CacheMode::None);
  EXPECT_EQ(c.disks[0].id, "disk-a");
  EXPECT_EQ(c.disks[0].queues, 2u);
  EXPECT_FALSE(c.disks[0].read_only);
  EXPECT_EQ(c.disks[1].cache, storage::CacheMode::Unsafe);
  EXPECT_TRUE(c.disks[1].read_only);
  EXPECT_EQ(c.disks[1].io_engine, storage::IoEngineKind::Sync);
}

TEST(Config, DiskCacheDefaultsToWriteback) {
  const VmConfig c = parse_config("[[disk]]\npath = \"/x.img\"\n", "test.toml");
  ASSERT_EQ(c.disks.size(), 1u);
  EXPECT_EQ(c.disks[0].cache, storage::CacheMode::Writeback);
}

// auto: the image's first bytes are checked, never guessed raw.
TEST(Config, DiskFormatDefaultsToAutoAndOnlyServedFormatsAreAccepted) {
  EXPECT_EQ(parse_config("[[disk]]\npath = \"/x.img\"\n", "test.toml").disks[0].format,
            storage::ImageFormat::Auto);
  EXPECT_EQ(parse_config("[[disk]]\npath = \"/x\"\nformat = \"raw\"\n", "t.toml").disks[0].format,
            storage::ImageFormat::Raw);
  expect_error("[[disk]]\npath = \"/a\"\nformat = \"qcow2\"\n",
               {"disk[0].format", "qcow2", "auto, raw", "qemu-img convert"});
}

TEST(Config, UnknownKeyNamesKeyAndLine) {
  expect_error("[machine]\nmemory_mib = 64\nmemroy = 3\n",
               {"machine.memroy", "test.toml:3", "unknown"});
  expect_error("bogus = 1\n", {"'bogus'", "test.toml:1"});
  expect_error("[[disk]]\npath = \"/a\"\nchache = \"none\"\n", {"disk[0].chache", ":3"});
}

TEST(Config, WrongTypeNamesKeyAndLine) {
  expect_error("[machine]\n\nvcpus = \"two\"\n", {"machine.vcpus", "integer", "test.toml:3"});
  expect_error("[serial]\nstdin = 1\n", {"serial.stdin", "boolean", ":2"});
  expect_error("machine = 3\n", {"machine", "table"});
}

TEST(Config, RealSizeGuestsAreAccepted) {
  // RAM past the MMIO hole, vCPUs up to the MP table's 254 and 32 disks: the
  // host- and KVM-dependent limits are checked at start, not here.
  std::string toml = "[machine]\nmemory_mib = 16384\nvcpus = 254\n";
  for (int i = 0; i < 32; ++i) toml += "[[disk]]\npath = \"/d" + std::to_string(i) + ".img\"\n";
  const VmConfig c = parse_config(toml, "test.toml");
  EXPECT_EQ(c.memory_mib, 16384u);
  EXPECT_EQ(c.vcpus, 254u);
  EXPECT_EQ(c.disks.size(), 32u);
}

TEST(Config, LimitsNameTheRealBound) {
  expect_error("[machine]\nvcpus = 255\n", {"machine.vcpus", "out of range [1, 254]"});
  expect_error("[machine]\nmemory_mib = 4294967297\n",
               {"machine.memory_mib", "out of range [16, 4294967296]"});
  std::string toml = "[kernel]\npath = \"/k\"\n";
  for (int i = 0; i < 58; ++i) toml += "[[disk]]\npath = \"/d" + std::to_string(i) + ".img\"\n";
  expect_error(toml, {"test.toml:", "58 disks", "at most 57", "COMMAND_LINE_SIZE 2048",
                      "virtio_mmio.device="});
}

TEST(Config, IoPollIsBoundedAndCanBeTurnedOff) {
  EXPECT_EQ(parse_config("", "test.toml").io_poll_us, kDefaultIoPollUs);
  EXPECT_EQ(parse_config("[machine]\nio_poll_us = 0\n", "test.toml").io_poll_us, 0u);
  EXPECT_EQ(parse_config("[machine]\nio_poll_us = 1000\n", "test.toml").io_poll_us, 1000u);
  expect_error("[machine]\nio_poll_us = 1001\n", {"machine.io_poll_us", "out of range [0, 1000]"});
  expect_error("[machine]\nio_poll_us = -1\n", {"machine.io_poll_us"});
}

TEST(Config, BadValuesAreErrors) {
  expect_error("[machine]\nmemory_mib = 1\n", {"machine.memory_mib", "out of range", ":2"});
  expect_error("[machine]\nvcpus = 0\n", {"machine.vcpus", "out of range"});
  expect_error("[[disk]]\npath = \"/a\"\ncache = \"writearound\"\n",
               {"disk[0].cache", "writearound",
                "writeback, none, writethrough, directsync, unsafe"});
  expect_error("[[disk]]\ncache = \"none\"\n", {"disk[0]", "path"});
  expect_error("[log]\nlevel = \"loud\"\n", {"log.level", "loud"});
  expect_error("[kernel]\npvm_workarounds = \"maybe\"\n", {"kernel.pvm_workarounds"});
  expect_error("[[disk]]\npath = \"/a\"\nserial = \"0123456789012345678901\"\n",
               {"disk[0].serial", "20"});
  expect_error("[[disk]]\npath = \"/a\"\nio_engine = \"aio\"\n", {"disk[0].io_engine", "aio"});
}

TEST(Config, DiskWriteLogIsOffByDefaultAndResolvedLikeOtherPaths) {
  const VmConfig c = parse_config(R"(
[[disk]]
path = "/d/a.img"
[[disk]]
path = "/d/b.img"
write_log = "/logs/b.wlog"
)",
                                  "test.toml");
  ASSERT_EQ(c.disks.size(), 2u);
  EXPECT_EQ(c.disks[0].write_log, "");
  EXPECT_EQ(c.disks[1].write_log, "/logs/b.wlog");
  expect_error("[[disk]]\npath = \"/a\"\nwrite_log = 1\n", {"disk[0].write_log", "string", ":3"});
  expect_error("[[disk]]\npath = \"/a\"\nwrite_logs = \"/x\"\n", {"disk[0].write_logs", "unknown"});
}

TEST(Config, DiskWriteLogRelativeToTheConfigFile) {
  const auto dir = std::filesystem::temp_directory_path() / "minivmm_config_write_log";
  std::filesystem::create_directories(dir);
  const auto file = dir / "vm.toml";
  std::ofstream(file) << "[[disk]]\npath = \"a.img\"\nwrite_log = \"a.wlog\"\n";
  const VmConfig c = load_config_file(file.string());
  ASSERT_EQ(c.disks.size(), 1u);
  EXPECT_EQ(c.disks[0].write_log, (dir / "a.wlog").string());
  std::filesystem::remove_all(dir);
}

TEST(Config, DiskFlagTakesWriteLog) {
  const DiskConfig d = parse_disk_flag("/a.img,cache=none,write_log=/tmp/a.wlog");
  EXPECT_EQ(d.cache, storage::CacheMode::None);
  EXPECT_EQ(d.write_log, "/tmp/a.wlog");
  EXPECT_EQ(parse_disk_flag("/a.img").write_log, "");
  EXPECT_EQ(parse_disk_flag("/a.img,write_log=").write_log, "");  // as write_log = "" in TOML
}

// The reason after "key '...'" (or after the disk's name for a missing path),
// without the prefix that says where the value came from.
std::string reason(const std::string& message, const std::string& key) {
  const size_t at = message.find(key);
  return at == std::string::npos ? message : message.substr(at + key.size());
}

// The same bad value gives the same reason from a [[disk]] table and from
// --disk: one parser and validator behind both.
TEST(DiskConfig, SameBadValueSameErrorFromTomlAndFlag) {
  struct Case {
    std::string toml_line, flag_field, key;
  };
  const Case cases[] = {
      {"cache = \"fast\"", "cache=fast", "cache'"},
      {"serial = \"0123456789012345678901\"", "serial=0123456789012345678901", "serial'"},
      {"queues = 0", "queues=0", "queues'"},
      {"queues = 65", "queues=65", "queues'"},
      {"io_engine = \"aio\"", "io_engine=aio", "io_engine'"},
      {"format = \"qcow2\"", "format=qcow2", "format'"},
      {"sparkly = true", "sparkly=true", "sparkly'"},
  };
  for (const Case& c : cases) {
    std::string toml_error, flag_error;
    try {
      parse_config("[[disk]]\npath = \"/a\"\n" + c.toml_line + "\n", "test.toml");
    } catch (const ConfigError& e) {
      toml_error = e.what();
    }
    try {
      // Through build_config: a value's limits are checked with the whole config.
      std::string kernel = "--kernel=/k", disk = "--disk=/a," + c.flag_field;
      char* argv[] = {kernel.data(), kernel.data(), disk.data()};
      build_config(parse_cli(3, argv));
    } catch (const Error& e) {  // UsageError (cannot be read) or ConfigError (refused)
      flag_error = e.what();
    }
    ASSERT_FALSE(toml_error.empty()) << c.toml_line << " accepted";
    ASSERT_FALSE(flag_error.empty()) << c.flag_field << " accepted";
    EXPECT_NE(toml_error.find("test.toml:3: key 'disk[0]." + c.key), std::string::npos)
        << toml_error;
    EXPECT_NE(flag_error.find("--disk /a," + c.flag_field + ": key '" + c.key), std::string::npos)
        << flag_error;
    EXPECT_EQ(reason(toml_error, c.key), reason(flag_error, c.key));
  }
}

TEST(DiskConfig, LimitsAreTheDevicesOwn) {
  EXPECT_EQ(parse_disk_flag("/a,queues=64").queues, 64u);  // virtio_blk_options.h kMaxQueues
  EXPECT_EQ(parse_disk_flag("/a,serial=01234567890123456789").id, "01234567890123456789");
  const VmConfig c = parse_config("[[disk]]\npath = \"/a\"\nqueues = 64\n", "test.toml");
  EXPECT_EQ(c.disks[0].queues, 64u);
}

TEST(DiskConfig, FlagTakesEveryTomlKey) {
  const DiskConfig d = parse_disk_flag(
      "/a.img,format=raw,cache=unsafe,read_only=true,serial=s,queues=4,io_engine=sync,write_log=/"
      "l");
  EXPECT_EQ(d.path, "/a.img");
  EXPECT_EQ(d.format, storage::ImageFormat::Raw);
  EXPECT_EQ(d.cache, storage::CacheMode::Unsafe);
  EXPECT_TRUE(d.read_only);
  EXPECT_EQ(d.id, "s");
  EXPECT_EQ(d.queues, 4u);
  EXPECT_EQ(d.io_engine, storage::IoEngineKind::Sync);
  EXPECT_EQ(d.write_log, "/l");
  EXPECT_EQ(parse_disk_flag("path=/b.img,ro").path, "/b.img");
  EXPECT_TRUE(parse_disk_flag("/b.img,ro").read_only);
  EXPECT_FALSE(parse_disk_flag("/b.img,read_only=false").read_only);
  EXPECT_THROW(parse_disk_flag("/b.img,read_only=maybe"), UsageError);
  EXPECT_THROW(parse_disk_flag("/b.img,queues=2x"), UsageError);
  EXPECT_THROW(parse_disk_flag("/b.img,cache=none,cache=unsafe"), UsageError);
  EXPECT_THROW(parse_disk_flag("cache=none"), UsageError);  // no path
  // From TOML, integer and boolean keys need their TOML types.
  expect_error("[[disk]]\npath = \"/a\"\nqueues = \"4\"\n", {"disk[0].queues", "integer"});
  expect_error("[[disk]]\npath = \"/a\"\nread_only = \"true\"\n", {"disk[0].read_only", "boolean"});
}

TEST(Config, SyntaxErrorNamesLine) {
  expect_error("[machine]\nvcpus = = 2\n", {"test.toml:2", "syntax"});
}

// Sets environment variables for one test and puts back what was there, so a
// later test in the same process (the real-kernel loader tests read HOME)
// sees the caller's environment.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::initializer_list<const char*> names) {
    for (const char* name : names) {
      const char* value = std::getenv(name);
      saved_.emplace_back(name, value ? std::optional<std::string>(value) : std::nullopt);
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST(Config, ExpandsEnvironmentAndCacheDir) {
  const ScopedEnv restore({"MINIVMM_TEST_DIR", "MINIVMM_CACHE", "XDG_CACHE_HOME", "HOME"});
  setenv("MINIVMM_TEST_DIR", "/opt/x", 1);
  EXPECT_EQ(expand_path("${MINIVMM_TEST_DIR}/vmlinux"), "/opt/x/vmlinux");
  setenv("MINIVMM_CACHE", "/c", 1);
  EXPECT_EQ(expand_path("${MINIVMM_CACHE}/guest"), "/c/guest");
  unsetenv("MINIVMM_CACHE");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(expand_path("${MINIVMM_CACHE}/guest"), "/xdg/minivmm/guest");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(expand_path("~/k"), "/home/u/k");
  EXPECT_EQ(expand_path("${MINIVMM_CACHE}"), "/home/u/.cache/minivmm");
  EXPECT_THROW(expand_path("${MINIVMM_SURELY_UNSET_VAR}/x"), ConfigError);
  EXPECT_THROW(expand_path("${OPEN"), ConfigError);
}

TEST(Config, LoadFileResolvesRelativePathsAgainstConfigDir) {
  const std::string dir = ::testing::TempDir() + "cfgdir";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/vm.toml";
  {
    std::ofstream out(path);
    out << "[kernel]\npath = \"vmlinux\"\n[[disk]]\npath = \"disks/a.img\"\n";
  }
  const VmConfig c = load_config_file(path);
  EXPECT_EQ(c.kernel, std::filesystem::absolute(dir).string() + "/vmlinux");
  EXPECT_EQ(c.disks[0].path, std::filesystem::absolute(dir).string() + "/disks/a.img");
  EXPECT_THROW(load_config_file(dir + "/missing.toml"), ConfigError);
}

// Only a regular file of at most kMaxConfigFileBytes is read: a device
// such as /dev/zero would be read without end, a directory reads as an
// empty config, a FIFO would block the open.
std::string load_error(const std::string& path) {
  try {
    load_config_file(path);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(Config, LoadFileRefusesWhatIsNotARegularFileOfSaneSize) {
  const std::string dir = ::testing::TempDir() + "cfgkinds";
  std::filesystem::create_directories(dir);
  EXPECT_EQ(load_error("/dev/zero"),
            "config file '/dev/zero' is a character device, not a regular file");
  EXPECT_EQ(load_error(dir), "config file '" + dir + "' is a directory, not a regular file");
  const std::string big = dir + "/big.toml";
  std::ofstream(big).close();
  std::filesystem::resize_file(big, kMaxConfigFileBytes + 1);
  EXPECT_EQ(load_error(big), "config file '" + big + "' is 1048577 bytes, over the " +
                                 std::to_string(kMaxConfigFileBytes) + "-byte limit");
  std::filesystem::resize_file(big, kMaxConfigFileBytes);  // the limit itself: a syntax error
  EXPECT_NE(load_error(big).find("TOML syntax error"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(DiskConfig, RoIsReadOnlyUnderAnotherName) {
  EXPECT_TRUE(parse_disk_flag("/b.img,ro=1").read_only);
  EXPECT_TRUE(parse_disk_flag("/b.img,ro=true").read_only);
  EXPECT_FALSE(parse_disk_flag("/b.img,ro=0").read_only);
  EXPECT_FALSE(parse_disk_flag("/b.img,ro=false").read_only);
  EXPECT_TRUE(parse_disk_flag("/b.img,read_only=1").read_only);
  EXPECT_FALSE(parse_disk_flag("/b.img,read_only=0").read_only);
  EXPECT_TRUE(parse_config("[[disk]]\npath = \"/a\"\nro = true\n", "t.toml").disks[0].read_only);
  try {
    parse_disk_flag("/b.img,ro,read_only=false");
    FAIL() << "ro and read_only both accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("key 'read_only' is given twice"), std::string::npos)
        << e.what();
  }
  try {
    parse_disk_flag("/b.img,ro=yes");
    FAIL() << "ro=yes accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("key 'ro' = \"yes\" must be a boolean"), std::string::npos)
        << e.what();
  }
}

TEST(DiskConfig, UnknownKeyMessageListsEveryKey) {
  try {
    parse_disk_flag("/b.img,readonly=1");
    FAIL() << "readonly accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("key 'readonly' is an unknown key; a disk takes path, "
                                         "format, cache, read_only (or ro), serial, queues, "
                                         "io_engine, write_log"),
              std::string::npos)
        << e.what();
  }
}

TEST(Config, DebugSeccompKey) {
  EXPECT_TRUE(parse_config("", "test.toml").seccomp);
  EXPECT_FALSE(parse_config("[debug]\nseccomp = false\n", "test.toml").seccomp);
  expect_error("[debug]\nseccomp = \"off\"\n", {"debug.seccomp", "boolean"});
}

TEST(Config, ApiSocketKeyIsAPathBesideTheConfigFile) {
  EXPECT_EQ(parse_config("", "test.toml").api_socket, "");
  EXPECT_EQ(parse_config("[api]\nsocket = \"/run/vm.sock\"\n", "test.toml").api_socket,
            "/run/vm.sock");
  EXPECT_EQ(parse_config("[api]\nsocket = \"vm.sock\"\n", "/etc/vms/a.toml").api_socket,
            "/etc/vms/vm.sock");
  expect_error("[api]\nsocket = 1\n", {"test.toml:2", "api.socket", "string"});
  expect_error("[api]\nport = 80\n", {"unknown key 'api.port'"});
}

}  // namespace
}  // namespace minivmm
