// What the log says about guest-triggered trouble: a
// disk is named even without a serial, and a flood of bad requests yields a
// bounded number of lines.
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/devices/virtio_blk/virtio_blk_fixture.h"

namespace minivmm::virtio::blk {
namespace {

class LogTest : public VirtioBlkTest {
 protected:
  void SetUp() override {
    previous_ = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink_));
  }
  void TearDown() override { spdlog::set_default_logger(previous_); }
  std::vector<std::string> lines() { return sink_->last_formatted(); }

  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_ =
      std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(4096);
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(LogTest, DiskWithoutSerialIsNamedByItsPath) {
  FakeDisk::Options o;
  o.path = "/images/a.img";
  make(o, {"", 1, kQueueSize});
  up();
  driver->write_config8(0, 1);  // capacity is read-only: a guest-triggered warning
  const auto got = lines();
  ASSERT_FALSE(got.empty());
  for (const auto& line : got) {
    EXPECT_EQ(line.find("virtio-blk :"), std::string::npos) << line;
  }
  EXPECT_NE(got.back().find("virtio-blk /images/a.img: ignored"), std::string::npos) << got.back();
}

TEST_F(LogTest, FloodOfBadRequestsIsRateLimited) {
  make();
  up();
  for (int i = 0; i < 200; ++i) {
    auto r = prepare(kTypeIn, 0, 100);  // not a multiple of 512: IOERR and a warning
    submit(r, true);
    wait_one();
  }
  // 10 a second per device; the loop may straddle a window boundary or two.
  EXPECT_LE(lines().size(), 40u);
}

}  // namespace
}  // namespace minivmm::virtio::blk
