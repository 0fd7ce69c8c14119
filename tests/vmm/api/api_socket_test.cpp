#include "vmm/api/api_socket.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "vmm/config/config.h"

namespace minivmm::api {
namespace {

namespace fs = std::filesystem;

class ApiSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("api_socket_test" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "api.sock").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string error() {
    try {
      listen_api_socket(path_);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(ApiSocketTest, CreatedForItsOwnerOnly) {
  const UniqueFd fd = listen_api_socket(path_);
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ApiSocketTest, StaleSocketIsReplacedLiveOneRefused) {
  { const UniqueFd dead = listen_api_socket(path_); }  // closed, file left behind: a run that died
  UniqueFd live = listen_api_socket(path_);
  EXPECT_TRUE(live.valid());
  EXPECT_EQ(error(),
            "API socket '" + path_ + "' is in use: another process accepts connections on it");
}

TEST_F(ApiSocketTest, OtherFilesAreNeverReplaced) {
  std::ofstream(path_) << "precious";
  EXPECT_EQ(error(), "API socket '" + path_ +
                         "' is a regular file, not a socket: refusing to "
                         "replace it");
  std::ifstream in(path_);
  std::string text;
  in >> text;
  EXPECT_EQ(text, "precious");
}

}  // namespace
}  // namespace minivmm::api
