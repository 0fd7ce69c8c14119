#include "vmm/config/validate_config.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "vmm/config/cli.h"

namespace minivmm {
namespace {

VmConfig from_flags(std::vector<std::string> args) {
  args.insert(args.begin(), {"minivmm", "--kernel", "/k"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return build_config(parse_cli(static_cast<int>(argv.size()), argv.data()));
}

std::string toml_error(const std::string& toml) {
  try {
    parse_config(toml, "test.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string flag_error(const std::vector<std::string>& args) {
  try {
    from_flags(args);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// What follows "where: ": the key and the reason.
std::string after_where(const std::string& message, const std::string& where) {
  EXPECT_EQ(message.rfind(where, 0), 0u) << message;
  return message.substr(message.find(": ") + 2);
}

// One rule per key: the same refused value gives the same text after the
// prefix saying where it came from, from the file and from a flag.
TEST(ValidateConfig, SameRefusedValueSameReasonFromFileAndFlag) {
  struct Case {
    std::string toml, flag, value, expected;
  };
  const Case cases[] = {
      {"[machine]\nmemory_mib = 8\n", "--memory", "8",
       "key 'machine.memory_mib' = 8 is out of range [16, 4294967296]"},
      {"[machine]\nvcpus = 255\n", "--vcpus", "255",
       "key 'machine.vcpus' = 255 is out of range [1, 254]"},
      {"[debug]\nrip_sample_ms = 10001\n", "--sample-rip", "10001",
       "key 'debug.rip_sample_ms' = 10001 is out of range [0, 10000]"},
      {"[log]\nlevel = \"loud\"\n", "--log-level", "loud",
       "key 'log.level' = \"loud\" must be one of: trace, debug, info, warn, error, critical, off"},
      {"[api]\nsocket = \"/" + std::string(107, 's') + "\"\n", "--api-sock",
       "/" + std::string(107, 's'),
       "key 'api.socket' = \"/" + std::string(107, 's') +
           "\" is 108 bytes long; a Unix socket path holds at most 107 (sun_path, unix(7))"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(after_where(toml_error(c.toml), "test.toml:2: "), c.expected);
    EXPECT_EQ(after_where(flag_error({c.flag, c.value}), c.flag + ": "), c.expected);
  }
}

TEST(ValidateConfig, PvmWorkaroundsSameReasonFromFileAndFlag) {
  const std::string toml = toml_error("[kernel]\npvm_workarounds = \"maybe\"\n");
  std::string flag;
  try {
    from_flags({"--pvm-workarounds", "maybe"});
  } catch (const UsageError& e) {  // a name the flag cannot be read as
    flag = e.what();
  }
  const std::string expected =
      "key 'kernel.pvm_workarounds' = \"maybe\" must be one of: auto, on, off";
  EXPECT_EQ(after_where(toml, "test.toml:2: "), expected);
  EXPECT_EQ(after_where(flag, "--pvm-workarounds: "), expected);
}

// The disk count: one rule, with the file's [[disk]] line or --disk as where.
TEST(ValidateConfig, DiskCountSameReasonFromFileAndFlag) {
  std::string toml;
  std::vector<std::string> flags;
  for (int i = 0; i < 58; ++i) {
    toml += "[[disk]]\npath = \"/d.img\"\n";
    flags.insert(flags.end(), {"--disk", "/d.img"});
  }
  const std::string from_file = toml_error(toml);
  const std::string from_flag = flag_error(flags);
  EXPECT_NE(from_file.find("58 disks do not fit"), std::string::npos) << from_file;
  EXPECT_NE(from_file.find("at most 57 disks"), std::string::npos) << from_file;
  EXPECT_EQ(after_where(from_file, "test.toml:"), after_where(from_flag, "--disk: "));
}

// The step sees the whole config: a flag's value replaces the file's before
// it is judged, and a flag's disk is named by its own --disk flag and key.
TEST(ValidateConfig, JudgesTheMergedConfig) {
  VmConfig file = parse_config("[machine]\nvcpus = 2\n", "test.toml");
  EXPECT_EQ(file.sources.at("machine.vcpus").where, "test.toml:2");
  EXPECT_EQ(from_flags({"--vcpus", "4"}).vcpus, 4u);
  const std::string e = flag_error({"--disk", "/a", "--disk", "/b,queues=65"});
  EXPECT_EQ(e, "--disk /b,queues=65: key 'queues' = 65 is out of range [1, 64]");
}

TEST(ValidateConfig, DefaultsPass) { EXPECT_NO_THROW(validate_config(VmConfig{})); }

}  // namespace
}  // namespace minivmm
