#include "vmm/config/cli.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace minivmm {
namespace {

CliOptions parse(std::vector<std::string> args) {
  args.insert(args.begin(), "minivmm");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return parse_cli(static_cast<int>(argv.size()), argv.data());
}

TEST(Cli, FlagsOverrideDefaults) {
  const CliOptions o =
      parse({"--kernel", "/k", "--memory=128", "--vcpus", "2", "--append", "quiet", "--log-level",
             "warn", "--no-stdin", "--disk", "/a.img,cache=directsync,ro,serial=s1,queues=2"});
  const VmConfig c = build_config(o);
  EXPECT_EQ(c.kernel, "/k");
  EXPECT_EQ(c.memory_mib, 128u);
  EXPECT_EQ(c.vcpus, 2u);
  EXPECT_EQ(c.cmdline, "console=ttyS0 quiet");
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_FALSE(c.serial_stdin);
  ASSERT_EQ(c.disks.size(), 1u);
  EXPECT_EQ(c.disks[0].path, "/a.img");
  EXPECT_EQ(c.disks[0].cache, storage::CacheMode::Directsync);
  EXPECT_TRUE(c.disks[0].read_only);
  EXPECT_EQ(c.disks[0].id, "s1");
  EXPECT_EQ(c.disks[0].queues, 2u);
}

TEST(Cli, ApiSocketFromTheFlag) {
  EXPECT_EQ(build_config(parse({"--kernel", "/k"})).api_socket, "");
  EXPECT_EQ(build_config(parse({"--kernel", "/k", "--api-sock", "/run/vm.sock"})).api_socket,
            "/run/vm.sock");
}

TEST(Cli, SeccompIsOnUnlessTurnedOff) {
  EXPECT_TRUE(build_config(parse({"--kernel", "/k"})).seccomp);
  EXPECT_FALSE(build_config(parse({"--kernel", "/k", "--no-seccomp"})).seccomp);
}

TEST(Cli, BadInputIsUsageError) {
  EXPECT_THROW(parse({"--frobnicate"}), UsageError);
  EXPECT_THROW(parse({"--memory"}), UsageError);
  EXPECT_THROW(parse({"--memory", "lots"}), UsageError);
  EXPECT_THROW(parse({"--memory", "-8"}), UsageError);
  EXPECT_THROW(parse({"--pvm-workarounds", "maybe"}), UsageError);
  EXPECT_THROW(parse_disk_flag("/a.img,cache=fast"), UsageError);
  EXPECT_THROW(parse_disk_flag("/a.img,sparkly"), UsageError);
  EXPECT_THROW(build_config(parse({})), UsageError);  // no kernel anywhere
}

// A number the command line can read but its key's rule refuses is a
// configuration error (exit code 65), as the same value in the file is.
TEST(Cli, RefusedValueIsConfigError) {
  EXPECT_THROW(build_config(parse({"--kernel", "/k", "--memory", "8"})), ConfigError);
  EXPECT_THROW(build_config(parse({"--kernel", "/k", "--vcpus", "0"})), ConfigError);
  EXPECT_THROW(build_config(parse({"--kernel", "/k", "--log-level", "loud"})), ConfigError);
  EXPECT_THROW(build_config(parse({"--kernel", "/k", "--sample-rip", "10001"})), ConfigError);
}

TEST(Cli, RealSizeGuestsAndTheirLimits) {
  EXPECT_EQ(parse({"--memory", "16384"}).memory_mib, 16384u);
  EXPECT_EQ(build_config(parse({"--kernel", "/k", "--vcpus", "254"})).vcpus, 254u);
  EXPECT_THROW(build_config(parse({"--kernel", "/k", "--vcpus", "255"})), ConfigError);
  std::vector<std::string> args = {"--kernel", "/k"};
  for (int i = 0; i < 57; ++i) args.insert(args.end(), {"--disk", "/d.img"});
  EXPECT_EQ(build_config(parse(args)).disks.size(), 57u);
  args.insert(args.end(), {"--disk", "/d.img"});
  try {
    build_config(parse(args));
    FAIL() << "58 disks accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("at most 57"), std::string::npos) << e.what();
  }
}

TEST(Cli, HelpListsExitCodes) {
  EXPECT_TRUE(parse({"-h"}).help);
  const std::string text = usage_text();
  for (const char* s :
       {"--config", "--disk", "Exit codes", "0x4f0", "75", "76", "69", "critical"}) {
    EXPECT_NE(text.find(s), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace minivmm
