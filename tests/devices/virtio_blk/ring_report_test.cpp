// The ring lines SIGUSR1 logs (ring_report.h): what the guest published,
// what the device took and returned, DEVICE_NEEDS_RESET, and a loop that
// does not answer.
#include "devices/virtio_blk/ring_report.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <future>
#include <memory>

#include "devices/virtio/virtio_constants.h"
#include "devices/virtio_blk/make_virtio_blk.h"
#include "devices/virtio_blk/virtio_blk_spec.h"
#include "tests/devices/virtio/virtio_driver_harness.h"
#include "tests/devices/virtio_blk/fake_disk.h"

namespace minivmm::virtio::blk {
namespace {

using testing::Buffer;
using testing::FakeDisk;
using testing::GuestRam;
using testing::VirtioDriverHarness;

constexpr uint16_t kQueueSize = 16;
constexpr std::chrono::milliseconds kAnswerWait{5000};

class RingReportTest : public ::testing::Test {
 protected:
  // No adaptive polling: a chain published without a notify stays untaken.
  EventLoop loop{"ring-test", EventLoop::Threading::OwnThread, std::chrono::nanoseconds(0)};
  GuestRam ram{4 << 20};
  FakeDisk* disk = nullptr;
  std::unique_ptr<VirtioMmioTransport> transport;
  std::unique_ptr<VirtioDriverHarness> driver;

  void SetUp() override {
    auto d = std::make_unique<FakeDisk>(FakeDisk::Options{});
    disk = d.get();
    transport = make_virtio_blk_mmio(ram.memory(), std::move(d),
                                     VirtioBlkOptions{"ring", 1, kQueueSize}, loop);
    driver = std::make_unique<VirtioDriverHarness>(*transport, ram, transport->irq_eventfd(), loop,
                                                   transport->queue_notify_eventfds());
  }

  void up() {
    ASSERT_TRUE(driver->negotiate(driver->device_features()));
    driver->setup_queue(0, kQueueSize);
    driver->driver_ok();
    driver->settle();
  }

  // A one-sector read (header, data, status); published, not notified.
  uint16_t publish_read() {
    const uint64_t header = ram.alloc(16, 16);
    const uint32_t type = kTypeIn;
    std::memcpy(ram.host(header), &type, 4);
    const uint64_t data = ram.alloc(512, 512);
    const uint64_t status = ram.alloc(1, 1);
    return driver->add_chain(0, {Buffer{header, 16, false}, Buffer{data, 512, true},
                                 Buffer{status, 1, true}});
  }

  void set_hold(bool hold) {
    loop.run_sync([&] {
      if (hold) {
        disk->hold = true;
      } else {
        disk->release();
      }
    });
  }
};

TEST(RingStateFormat, OneMachineReadableLinePerQueue) {
  QueueRingState s;
  s.ready = true;
  s.avail_idx = 9;
  s.last_avail = 7;
  s.used_idx = 5;
  EXPECT_EQ(format_ring_state(2, 1, s, true),
            "ring disk=2 queue=1 ready=1 avail_idx=9 last_avail=7 used_idx=5 in_flight=2 "
            "needs_reset=0 io_loop=ok");
  s.needs_reset = true;
  EXPECT_EQ(format_ring_state(0, 0, s, false),
            "ring disk=0 queue=0 ready=1 avail_idx=9 last_avail=7 used_idx=5 in_flight=2 "
            "needs_reset=1 io_loop=unresponsive");
}

TEST(RingStateFormat, InFlightWrapsWithTheSixteenBitIndices) {
  QueueRingState s;
  s.last_avail = 2;
  s.used_idx = 65534;
  EXPECT_EQ(in_flight(s), 4);
}

TEST_F(RingReportTest, QueueNotSetUpIsNotReady) {
  const auto lines = registered_ring_state_lines(kAnswerWait);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0],
            "ring disk=0 queue=0 ready=0 avail_idx=0 last_avail=0 used_idx=0 in_flight=0 "
            "needs_reset=0 io_loop=ok");
}

TEST_F(RingReportTest, ChainPublishedButNotTakenShowsAvailAheadOfLastAvail) {
  up();
  publish_read();  // no notify: the device has no reason to look
  const auto lines = registered_ring_state_lines(kAnswerWait);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0],
            "ring disk=0 queue=0 ready=1 avail_idx=1 last_avail=0 used_idx=0 in_flight=0 "
            "needs_reset=0 io_loop=ok");
}

TEST_F(RingReportTest, RequestWithTheDiskIsInFlightUntilItCompletes) {
  up();
  set_hold(true);
  publish_read();
  driver->notify(0);
  driver->settle();
  EXPECT_EQ(registered_ring_state_lines(kAnswerWait).at(0),
            "ring disk=0 queue=0 ready=1 avail_idx=1 last_avail=1 used_idx=0 in_flight=1 "
            "needs_reset=0 io_loop=ok");
  set_hold(false);
  ASSERT_EQ(driver->wait_used(0, 1).size(), 1u);
  EXPECT_EQ(registered_ring_state_lines(kAnswerWait).at(0),
            "ring disk=0 queue=0 ready=1 avail_idx=1 last_avail=1 used_idx=1 in_flight=0 "
            "needs_reset=0 io_loop=ok");
}

TEST_F(RingReportTest, CorruptRingShowsNeedsReset) {
  up();
  driver->set_avail_idx(0, kQueueSize + 1);  // more than a queue's worth ahead
  driver->notify(0);
  driver->settle();
  ASSERT_TRUE(driver->status() & kStatusDeviceNeedsReset);
  EXPECT_EQ(registered_ring_state_lines(kAnswerWait).at(0),
            "ring disk=0 queue=0 ready=1 avail_idx=17 last_avail=0 used_idx=0 in_flight=0 "
            "needs_reset=1 io_loop=ok");
}

TEST_F(RingReportTest, LoopThatDoesNotAnswerIsReportedWithTheGuestsAvailIdx) {
  up();
  std::promise<void> unblock;
  std::shared_future<void> blocked = unblock.get_future().share();
  loop.post([blocked] { blocked.wait(); });  // the loop is stuck until we let go
  publish_read();
  const auto lines = registered_ring_state_lines(std::chrono::milliseconds(20));
  unblock.set_value();
  ASSERT_EQ(lines.size(), 1u);
  // The avail idx comes from guest RAM, not from the stuck loop.
  EXPECT_EQ(lines[0],
            "ring disk=0 queue=0 ready=1 avail_idx=1 last_avail=0 used_idx=0 in_flight=0 "
            "needs_reset=0 io_loop=unresponsive");
}

TEST_F(RingReportTest, DeviceLeavesTheReportWhenDestroyed) {
  driver.reset();
  transport.reset();
  EXPECT_TRUE(registered_ring_state_lines(kAnswerWait).empty());
}

}  // namespace
}  // namespace minivmm::virtio::blk
