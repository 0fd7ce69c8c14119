// The control API's FlushDisks on one virtio-blk device over a FakeDisk,
// driven by the host-side driver harness (no guest): requests in flight
// complete and are answered before the flush; the flush reaches the disk as
// a host sync in every cache mode; chains the guest publishes meanwhile wait
// in the avail ring and are served once the device resumes, even when
// their notify was consumed during the flush; a flush that overruns the
// caller's wait still ends with the device serving requests.
#include "devices/virtio_blk/host_flush.h"

#include <future>
#include <string>

#include "devices/virtio_blk/virtio_blk.h"
#include "tests/devices/virtio_blk/virtio_blk_fixture.h"

namespace minivmm::virtio::blk {
namespace {

using storage::CacheMode;
constexpr std::chrono::milliseconds kWait{5000};

class HostFlushTest : public VirtioBlkTest {
 protected:
  // A loop that never polls: a chain is served only if a notify or the
  // device's own resume looks at the ring (polling would find it anyway).
  HostFlushTest() : VirtioBlkTest(std::chrono::nanoseconds(0)) {}
  VirtioBlk& device() { return dynamic_cast<VirtioBlk&>(transport->device()); }
  std::optional<std::vector<DiskFlushReport>> flush(std::chrono::milliseconds wait = kWait) {
    return flush_disks(loop, {&device()}, wait);
  }
  // A write of one sector filled with `byte`, published and notified.
  GuestRequest write(uint64_t sector, uint8_t byte, bool notify = true) {
    GuestRequest w = prepare(kTypeOut, sector, 512);
    std::memset(ram.host(w.data), byte, 512);
    if (notify) {
      submit(w, false);
    } else {
      driver->add_chain(0, {{w.header, 16, false}, {w.data, 512, false}, {w.status, 1, true}});
    }
    return w;
  }
};

TEST_F(HostFlushTest, InFlightRequestsCompleteAndAreAnsweredBeforeTheFlush) {
  make();
  up();
  on_loop([&] {
    disk->hold = true;
    return 0;
  });
  const GuestRequest w = write(3, 0x5c);
  driver->settle();
  ASSERT_EQ(on_loop([&] { return disk->in_flight(); }), 1u);
  uint8_t status_at_flush = kStatusUntouched;
  uint16_t used_at_flush = 0;
  on_loop([&] {
    disk->on_flush = [&] {
      status_at_flush = status_of(w);
      used_at_flush = driver->used_idx(0);
    };
    return 0;
  });
  const auto reports = flush();
  ASSERT_TRUE(reports);
  EXPECT_EQ(status_at_flush, kStatusOk);  // completed before the flush ran
  EXPECT_EQ(used_at_flush, 1u);           // and in the used ring
  EXPECT_EQ(on_loop([&] { return disk->flushes; }), 1u);
  EXPECT_EQ(on_loop([&] { return disk->image()[3UL * 512]; }), 0x5c);
  EXPECT_EQ((*reports)[0].error, 0);
}

// A chain the guest publishes while the device is quiesced stays in the
// avail ring (nothing reaches the disk) even when its notify is handled
// then; resuming looks at the ring again and serves it without a new notify.
TEST_F(HostFlushTest, ChainsPublishedDuringTheFlushWaitThenRunWithoutAnotherNotify) {
  make();
  up();
  uint64_t submitted_before = 0, submitted_after_notify = 0;
  GuestRequest late;
  on_loop([&] {
    disk->on_flush = [&] {
      late = write(5, 0x7e, /*notify=*/false);
      submitted_before = disk->submitted;
      device().notify(0);  // the notify arrives and is consumed while quiesced
      submitted_after_notify = disk->submitted;
    };
    return 0;
  });
  ASSERT_TRUE(flush());
  EXPECT_EQ(submitted_after_notify, submitted_before) << "a chain was taken while quiesced";
  const UsedElement u = wait_one();  // served after the resume, no notify since
  EXPECT_EQ(u.len, 1u);
  EXPECT_EQ(status_of(late), kStatusOk);
  EXPECT_EQ(on_loop([&] { return disk->image()[5UL * 512]; }), 0x7e);
}

TEST_F(HostFlushTest, ReadOnlyDiskIsDrainedButNotFlushed) {
  FakeDisk::Options o;
  o.read_only = true;
  make(o);
  up();
  const auto reports = flush();
  ASSERT_TRUE(reports);
  EXPECT_FALSE((*reports)[0].flushed);
  EXPECT_EQ(on_loop([&] { return disk->flushes; }), 0u);
  const GuestRequest r = prepare(kTypeIn, 1, 512);  // still served after the resume
  submit(r, true);
  EXPECT_EQ(wait_one().len, 513u);
  EXPECT_EQ(status_of(r), kStatusOk);
}

TEST_F(HostFlushTest, FlushErrorIsReportedAndTheDeviceResumes) {
  make();
  up();
  on_loop([&] {
    disk->fail_flush_with = EIO;
    return 0;
  });
  const auto reports = flush();
  ASSERT_TRUE(reports);
  EXPECT_TRUE((*reports)[0].flushed);
  EXPECT_EQ((*reports)[0].error, -EIO);
  on_loop([&] {
    disk->fail_flush_with = 0;
    return 0;
  });
  expect_device_still_serves();
}

// The caller's wait is bounded; the device resumes when the flush ends,
// whether or not anybody still waits for the answer.
TEST_F(HostFlushTest, FlushOutlastingTheWaitStillResumesTheDevice) {
  make();
  up();
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  on_loop([&] {
    disk->on_flush = [released] { released.wait(); };
    return 0;
  });
  EXPECT_FALSE(flush(std::chrono::milliseconds(1)));
  const GuestRequest w = write(7, 0x33);  // published while the flush still runs
  release.set_value();
  const UsedElement u = wait_one();
  EXPECT_EQ(u.len, 1u);
  EXPECT_EQ(status_of(w), kStatusOk);
  expect_device_still_serves();
}

class HostFlushPerMode : public HostFlushTest, public ::testing::WithParamInterface<CacheMode> {};

// Every writable disk gets a host sync, unsafe included (its guest flushes
// are no-ops); writethrough and directsync too, where it is cheap and
// covers a guest that switched the write cache on. Nothing stays at risk.
TEST_P(HostFlushPerMode, FlushReachesTheDiskAsAHostSyncAndLeavesNothingAtRisk) {
  FakeDisk::Options o;
  o.mode = GetParam();
  make(o);
  up();
  write(2, 0x11);
  wait_one();
  const auto reports = flush();
  ASSERT_TRUE(reports);
  ASSERT_EQ(reports->size(), 1u);
  const DiskFlushReport& r = (*reports)[0];
  EXPECT_TRUE(r.flushed);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.at_risk_bytes, 0u);
  EXPECT_EQ(r.at_risk_requests, 0u);
  EXPECT_EQ(on_loop([&] { return disk->host_syncs; }), 1u);
  EXPECT_EQ(on_loop([&] { return disk->stats().fdatasyncs; }), 1u);
}

// The report is read after the flush: the fake's window had the write in it.
TEST_F(HostFlushTest, WriteBackWindowIsNonEmptyBeforeTheFlush) {
  make();
  up();
  write(2, 0x11);
  wait_one();
  EXPECT_EQ(on_loop([&] { return disk->stats().at_risk_bytes; }), 512u);
  const auto reports = flush();
  ASSERT_TRUE(reports);
  EXPECT_EQ((*reports)[0].at_risk_bytes, 0u);
}

INSTANTIATE_TEST_SUITE_P(AllModes, HostFlushPerMode,
                         ::testing::Values(CacheMode::Writeback, CacheMode::None,
                                           CacheMode::Writethrough, CacheMode::Directsync,
                                           CacheMode::Unsafe),
                         [](const ::testing::TestParamInfo<CacheMode>& mode) {
                           return std::string(storage::to_string(mode.param));
                         });

}  // namespace
}  // namespace minivmm::virtio::blk
