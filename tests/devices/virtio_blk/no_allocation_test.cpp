// Issue 10: a guest request costs the device thread no heap allocation.
// This binary replaces the global operator new to count allocations per
// thread; the harness driver (this thread) may allocate, the EventLoop
// thread that runs VirtioBlk, the Disk and its engine must not once the
// pools have grown. Real disks on a file, every cache mode, so both the
// page-cache fast path and the io_uring path (O_DIRECT, RWF_DSYNC, batch
// fdatasync) are covered.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "devices/virtio/event_loop.h"
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

class NoAllocation : public ::testing::TestWithParam<CacheMode> {
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
      const uint64_t sector = first_sector + s * 8;
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
      const uint64_t sector = (i * 40) % (kImageBytes / 512 - 64);
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
  EventLoop loop_{"noalloc-test"};  // first: destroyed last
  GuestRam ram_{1 << 20};
  std::string path_;
  std::unique_ptr<VirtioMmioTransport> transport_;
  std::unique_ptr<VirtioDriverHarness> driver_;
  Slot slots_[kDepth];
};

TEST_P(NoAllocation, GuestRequestsAllocateNothingOnTheDeviceThread) {
  run_requests(20);  // the pools grow here
  const uint64_t before = loop_thread_allocations();
  run_requests(60);  // 480 reads and writes, 32 flushes (4 at a time)
  const uint64_t after = loop_thread_allocations();
  EXPECT_EQ(after - before, 0u) << "heap allocations on the device thread for 512 requests";
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

INSTANTIATE_TEST_SUITE_P(Modes, NoAllocation,
                         ::testing::Values(CacheMode::Writeback, CacheMode::None,
                                           CacheMode::Writethrough, CacheMode::Directsync,
                                           CacheMode::Unsafe),
                         [](const ::testing::TestParamInfo<CacheMode>& p) {
                           return std::string(storage::to_string(p.param));
                         });

}  // namespace
}  // namespace minivmm::virtio::blk
