// A virtio-blk device over a FakeDisk, driven through the MMIO transport by
// the host-side driver harness.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "devices/virtio/virtio_constants.h"
#include "devices/virtio_blk/make_virtio_blk.h"
#include "devices/virtio_blk/virtio_blk_spec.h"
#include "tests/devices/virtio/virtio_driver_harness.h"
#include "tests/devices/virtio_blk/fake_disk.h"

namespace minivmm::virtio::blk {

using testing::Buffer;
using testing::FakeDisk;
using testing::GuestRam;
using testing::UsedElement;
using testing::VirtioDriverHarness;

constexpr uint16_t kQueueSize = 16;
constexpr uint8_t kStatusUntouched = 0xee;  // sentinel the device must overwrite

// Guest buffers of one request: header, optional data, status byte.
struct GuestRequest {
  uint64_t header = 0;
  uint64_t data = 0;
  uint32_t data_len = 0;
  uint64_t status = 0;
};

class VirtioBlkTest : public ::testing::Test {
 protected:
  VirtioBlkTest() = default;
  // poll_max 0: the loop never polls the rings, so only notifies (or the
  // device itself) make it look at them.
  explicit VirtioBlkTest(std::chrono::nanoseconds poll_max)
      : loop("blk-test", EventLoop::Threading::OwnThread, poll_max) {}

  EventLoop loop{"blk-test"};
  GuestRam ram{4 << 20};
  FakeDisk* disk = nullptr;
  std::unique_ptr<VirtioMmioTransport> transport;
  std::unique_ptr<VirtioDriverHarness> driver;

  void make(FakeDisk::Options options = {},
            VirtioBlkOptions blk_options = {"minivmm-serial-1", 1, kQueueSize}) {
    auto d = std::make_unique<FakeDisk>(options);
    disk = d.get();
    transport = make_virtio_blk_mmio(ram.memory(), std::move(d), blk_options, loop);
    driver = std::make_unique<VirtioDriverHarness>(*transport, ram, transport->irq_eventfd(), loop,
                                                   transport->queue_notify_eventfds());
  }

  uint64_t offered() { return driver->device_features(); }

  // Negotiates `features` (default: all offered), sets up `queues` queues.
  void up(uint64_t features = 0, uint16_t queues = 1) {
    if (features == 0) features = offered();
    ASSERT_TRUE(driver->negotiate(features));
    for (uint16_t q = 0; q < queues; ++q) driver->setup_queue(q, kQueueSize);
    driver->driver_ok();
  }

  GuestRequest prepare(uint32_t type, uint64_t sector, uint32_t data_len) {
    GuestRequest r;
    r.header = ram.alloc(16, 16);
    std::memcpy(ram.host(r.header), &type, 4);
    std::memcpy(ram.host(r.header + 8), &sector, 8);
    if (data_len) r.data = ram.alloc(data_len, 512);
    r.data_len = data_len;
    r.status = ram.alloc(1, 1);
    *ram.host(r.status) = kStatusUntouched;
    return r;
  }

  // The usual Linux layout: header (readable), data, status (writable).
  uint16_t submit(const GuestRequest& r, bool data_writable, bool indirect = false,
                  uint16_t queue = 0) {
    std::vector<Buffer> bufs{{r.header, 16, false}};
    if (r.data_len) bufs.push_back({r.data, r.data_len, data_writable});
    bufs.push_back({r.status, 1, true});
    const uint16_t head = driver->add_chain(queue, bufs, indirect);
    driver->notify(queue);
    return head;
  }

  UsedElement wait_one(uint16_t queue = 0) {
    auto used = driver->wait_used(queue, 1);
    EXPECT_EQ(used.size(), 1u) << "no used entry before the deadline";
    return used.empty() ? UsedElement{0xffffffff, 0xffffffff} : used[0];
  }

  uint8_t status_of(const GuestRequest& r) { return *ram.host(r.status); }

  // Reads disk state on the loop thread, where the Disk lives.
  template <typename F>
  auto on_loop(F f) {
    decltype(f()) out{};
    loop.run_sync([&] { out = f(); });
    return out;
  }

  void fill(const GuestRequest& r, uint8_t seed) {
    for (uint32_t i = 0; i < r.data_len; ++i)
      ram.host(r.data)[i] = static_cast<uint8_t>(seed + i * 7);
  }

  // A write of 1 sector then a read of it: the device still serves requests.
  void expect_device_still_serves(uint64_t sector = 1) {
    auto w = prepare(kTypeOut, sector, 512);
    fill(w, 0x5a);
    const uint16_t wh = submit(w, false);
    auto u = wait_one();
    EXPECT_EQ(u.id, wh);
    EXPECT_EQ(status_of(w), kStatusOk);
    auto r = prepare(kTypeIn, sector, 512);
    const uint16_t rh = submit(r, true);
    u = wait_one();
    EXPECT_EQ(u.id, rh);
    EXPECT_EQ(u.len, 513u);
    EXPECT_EQ(status_of(r), kStatusOk);
    EXPECT_EQ(std::memcmp(ram.host(r.data), ram.host(w.data), 512), 0);
  }
};

}  // namespace minivmm::virtio::blk
