// VirtioBlk over a real Disk on a file, in every cache mode (so both the
// page-cache fast path and the io_uring path: O_DIRECT, RWF_DSYNC, batch
// fdatasync), on an own-thread EventLoop that polls:
//  - a guest request costs the device thread no heap allocation. This
//    binary replaces the global operator new to count allocations per
//    thread; the harness driver (this thread) may allocate, the loop thread
//    must not once the pools have grown;
//  - no request is lost between polling and sleeping: a driver that
//    notifies only when avail_event asks (EVENT_IDX), at gaps around the
//    poll window, gets every request answered.
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <thread>

#include "common/event_loop.h"
#include "devices/virtio/split_queue.h"
#include "devices/virtio/virtio_constants.h"
#include "devices/virtio_blk/make_virtio_blk.h"
#include "devices/virtio_blk/virtio_blk_spec.h"
#include "storage/disk.h"
#include "storage/io_engine.h"
#include "tests/devices/virtio/virtio_driver_harness.h"

namespace {
thread_local uint64_t t_allocations = 0;
}  // namespace

void* operator new(std::size_t size) {
  ++t_allocations;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
// GCC's -Wmismatched-new-delete cannot see that this pair replaces the
// global one and matches it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace minivmm::virtio::blk {
namespace {

using storage::CacheMode;
using testing::GuestRam;
using testing::VirtioDriverHarness;

constexpr uint16_t kQueueSize = 64;
constexpr unsigned kDepth = 4;
constexpr uint64_t kImageBytes = 4 << 20;

class RealDiskDevice : public ::testing::TestWithParam<CacheMode> {
 protected:
  void SetUp() override {
    try {
      storage::make_uring_engine();
    } catch (const std::exception& e) {
      GTEST_SKIP() << "io_uring unavailable here (" << e.what() << ")";
    }
    char name[] = "/var/tmp/minivmm-noalloc-XXXXXX";
    const int fd = ::mkstemp(name);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, kImageBytes), 0);
    ::close(fd);
    path_ = name;
    storage::DiskOptions d;
    d.path = path_;
    d.cache = GetParam();
    transport_ = make_virtio_blk_mmio(ram_.memory(), storage::Disk::open(d),
                                      VirtioBlkOptions{"noalloc", 1, kQueueSize}, loop_);
    driver_ = std::make_unique<VirtioDriverHarness>(*transport_, ram_, transport_->irq_eventfd(),
                                                    loop_, transport_->queue_notify_eventfds());
    ASSERT_TRUE(driver_->negotiate(driver_->device_features()));
    driver_->setup_queue(0, kQueueSize);
    driver_->driver_ok();
    for (unsigned s = 0; s < kDepth; ++s) {
      slots_[s] = {ram_.alloc(16, 16), ram_.alloc(4096, 4096), ram_.alloc(1, 1)};
    }
  }
  void TearDown() override {
    driver_.reset();
    transport_.reset();
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  // kDepth requests of one type at once (distinct sectors), then waits for them.
  void batch(uint32_t type, uint64_t first_sector) {
    for (unsigned s = 0; s < kDepth; ++s) {
      const Slot& slot = slots_[s];
      const uint64_t sector = first_sector + uint64_t{s} * 8;
      std::memcpy(ram_.host(slot.header), &type, 4);
      std::memcpy(ram_.host(slot.header + 8), &sector, 8);
      *ram_.host(slot.status) = 0xff;
      const auto d = static_cast<uint16_t>(3 * s);
      const bool flush = type == kTypeFlush;
      driver_->write_descriptor(0, d, slot.header, 16, kDescFlagNext, flush ? d + 2 : d + 1);
      if (!flush) {
        driver_->write_descriptor(0, d + 1, slot.data, 4096,
                                  kDescFlagNext | (type == kTypeIn ? kDescFlagWrite : 0), d + 2);
      }
      driver_->write_descriptor(0, d + 2, slot.status, 1, kDescFlagWrite, 0);
      driver_->publish_head(0, d);
    }
    driver_->notify(0);
    ASSERT_EQ(driver_->wait_used(0, kDepth).size(), kDepth);
    for (const Slot& slot : slots_) ASSERT_EQ(*ram_.host(slot.status), kStatusOk);
  }

  void run_requests(unsigned rounds) {
    for (unsigned i = 0; i < rounds; ++i) {
      const uint64_t sector = (uint64_t{i} * 40) % (kImageBytes / 512 - 64);
      batch(kTypeOut, sector);
      batch(kTypeIn, sector);
      if (i % 8 == 0) batch(kTypeFlush, 0);
    }
  }

  uint64_t loop_thread_allocations() {
    uint64_t n = 0;
    loop_.run_sync([&n] { n = t_allocations; });
    return n;
  }

  struct Slot {
    uint64_t header = 0, data = 0, status = 0;
  };
  // Polls up to 500 us (the VMM's default is 32): long enough that polling
  // engages on a loaded 2-CPU machine, so the tests below cover it.
  EventLoop loop_{"real-disk-test", EventLoop::Threading::OwnThread,
                  std::chrono::microseconds(500)};  // first: destroyed last
  GuestRam ram_{1 << 20};
  std::string path_;
  std::unique_ptr<VirtioMmioTransport> transport_;
  std::unique_ptr<VirtioDriverHarness> driver_;
  Slot slots_[kDepth];
};

TEST_P(RealDiskDevice, GuestRequestsAllocateNothingOnTheDeviceThread) {
  run_requests(20);  // the pools grow here
  const uint64_t before = loop_thread_allocations();
  run_requests(60);  // 480 reads and writes, 32 flushes (4 at a time)
  const uint64_t after = loop_thread_allocations();
  EXPECT_EQ(after - before, 0u) << "heap allocations on the device thread for 512 requests";
}

// One request at a time with gaps of 0-700 us (the poll window is up to 500),
// notifying only when the device's avail_event asks (2.7.10), as Linux
// does: a request published while the loop switches from polling to
// sleeping must still be served. Each waits at most 5 s.
TEST_P(RealDiskDevice, NoRequestIsLostBetweenPollingAndSleeping) {
  std::mt19937 rng(20261129);
  for (unsigned i = 0; i < 1000; ++i) {
    const Slot& slot = slots_[0];
    const uint32_t type = i % 2 ? kTypeIn : kTypeOut;
    const uint64_t sector = (uint64_t{i} * 8) % (kImageBytes / 512 - 8);
    std::memcpy(ram_.host(slot.header), &type, 4);
    std::memcpy(ram_.host(slot.header + 8), &sector, 8);
    *ram_.host(slot.status) = 0xff;
    driver_->write_descriptor(0, 0, slot.header, 16, kDescFlagNext, 1);
    driver_->write_descriptor(0, 1, slot.data, 4096,
                              kDescFlagNext | (type == kTypeIn ? kDescFlagWrite : 0), 2);
    driver_->write_descriptor(0, 2, slot.status, 1, kDescFlagWrite, 0);
    driver_->set_used_event(0, driver_->used_idx(0));  // interrupt at the next used entry
    const uint16_t old_idx = driver_->avail_idx(0);
    driver_->publish_head(0, 0);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (vring_need_event(driver_->avail_event(0), driver_->avail_idx(0), old_idx)) {
      driver_->notify(0);
    }
    ASSERT_EQ(driver_->wait_used(0, 1).size(), 1u) << "request " << i << " never answered";
    ASSERT_EQ(*ram_.host(slot.status), kStatusOk);
    // A spin, not a sleep: sleeps overshoot by the timer slack (50 us).
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(rng() % 700);
    while (std::chrono::steady_clock::now() < until) {
    }
  }
}

// After the guest stops submitting, the I/O thread sleeps: the poll window
// closes and nothing (a readable ring fd, a suppressed notification) keeps
// the loop spinning. Process CPU time over 300 ms of idleness stays small.
TEST_P(RealDiskDevice, IdleDeviceSpendsNoCpu) {
  run_requests(20);
  const auto cpu_ms = [] {
    timespec t{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1000.0 + static_cast<double>(t.tv_nsec) / 1e6;
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double before = cpu_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_LT(cpu_ms() - before, 30.0) << "ms of CPU while the device was idle";
}

// The counter itself works: the same thread allocating is seen.
TEST(NoAllocationCounter, CountsAllocationsOnTheLoopThread) {
  EventLoop loop("noalloc-counter");
  uint64_t before = 0, after = 0;
  loop.run_sync([&] {
    before = t_allocations;
    auto* p = new std::string(100, 'x');  // longer than the small-string buffer
    delete p;
    after = t_allocations;
  });
  EXPECT_GE(after - before, 2u);
}

INSTANTIATE_TEST_SUITE_P(Modes, RealDiskDevice,
                         ::testing::Values(CacheMode::Writeback, CacheMode::None,
                                           CacheMode::Writethrough, CacheMode::Directsync,
                                           CacheMode::Unsafe),
                         [](const ::testing::TestParamInfo<CacheMode>& p) {
                           return std::string(storage::to_string(p.param));
                         });

}  // namespace
}  // namespace minivmm::virtio::blk
