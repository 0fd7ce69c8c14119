// What a guest (or a failing host) cannot do to a Disk: make it
// allocate without bound, leave a request live forever so drain() spins,
// keep doing "useful" work on the loop thread for as long as it likes, or
// see a flush succeed after the host lost a writeback error.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include "common/unique_fd.h"
#include "faulty_engine.h"
#include "stalling_engine.h"
#include "storage/aligned_buffer.h"
#include "storage/image_disk.h"
#include "storage/open_disk.h"
#include "storage/sync_engine.h"
#include "test_image.h"

namespace minivmm::storage {
namespace {

constexpr uint64_t kImageSize = 16 << 20;

class DiskFailure : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("disk.img");
    test::make_image(path_, kImageSize);
  }
  std::unique_ptr<Disk> open(CacheMode mode, IoEngineKind kind = IoEngineKind::Sync) {
    DiskOptions o;
    o.path = path_;
    o.cache = mode;
    auto inner = kind == IoEngineKind::IoUring ? make_uring_engine() : make_sync_engine();
    return open_disk_with_engine(o,
                                 std::make_unique<test::FaultyEngine>(std::move(inner), faults_));
  }
  test::TempDir dir_;
  std::string path_;
  std::shared_ptr<test::Faults> faults_ = std::make_shared<test::Faults>();
};

DiskRequest request(RequestType op, uint64_t offset, std::vector<iovec> iov, int* result) {
  // DiskRequest::iov is a view: keep the array for the test's lifetime.
  static std::deque<std::vector<iovec>> kept;
  DiskRequest r;
  r.op = op;
  r.offset = offset;
  r.iov = kept.emplace_back(std::move(iov));
  r.done = [result](int res) { *result = res; };
  return r;
}

// Under O_DIRECT a misaligned guest buffer is bounced, but through
// a bounded buffer, not one as large as the request.
TEST_F(DiskFailure, MisalignedODirectRequestBouncesThroughABoundedBuffer) {
  auto disk = open(CacheMode::None);
  constexpr size_t kLen = 8 << 20;
  std::vector<uint8_t> mem(2 * kLen + 64);
  uint8_t* src = mem.data() + 1;  // misaligned: must bounce
  for (size_t i = 0; i < kLen; ++i) src[i] = static_cast<uint8_t>(i * 31 + 7);
  DiskRequest w;
  w.op = RequestType::Write;
  w.offset = 4096;
  const iovec w_iov[] = {{src, kLen}};
  w.iov = w_iov;
  ASSERT_EQ(test::run_request(*disk, std::move(w)), 0);
  EXPECT_EQ(0, std::memcmp(test::read_file(path_, 4096, kLen).data(), src, kLen));
  uint8_t* dst = mem.data() + kLen + 3;
  DiskRequest r;
  r.op = RequestType::Read;
  r.offset = 4096;
  const iovec r_iov[] = {{dst, 100}, {dst + 100, kLen - 100}};
  r.iov = r_iov;
  ASSERT_EQ(test::run_request(*disk, std::move(r)), 0);
  EXPECT_EQ(0, std::memcmp(dst, src, kLen));
  EXPECT_GT(disk->stats().bounce_bytes_peak, 0u);
  EXPECT_LE(disk->stats().bounce_bytes_peak, ImageDisk::kBounceChunkBytes);
}

// An engine that throws in prepare() (allocation failure,
// write-log append failure) fails the request, it does not leave it live.
TEST_F(DiskFailure, PrepareThrowingCompletesTheRequestWithEioAndFreesItsSlot) {
  auto disk = open(CacheMode::Writeback);
  AlignedBuffer buf(4096, 4096);
  faults_->throw_on_prepare = true;
  int result = 1;
  EXPECT_NO_THROW(disk->submit(request(RequestType::Write, 0, {{buf.data(), 4096}}, &result)));
  EXPECT_EQ(result, -EIO);
  EXPECT_EQ(disk->in_flight(), 0u);
  disk->drain();  // returns: nothing is live
}

// kick() failing (io_uring_submit error) fails what it could not
// submit, and drain() ends instead of spinning.
TEST_F(DiskFailure, KickThrowingFailsTheRequestsAndDrainEnds) {
  auto disk = open(CacheMode::Writeback);
  AlignedBuffer buf(8192, 4096);
  int first = 1, second = 1;
  disk->submit(request(RequestType::Write, 0, {{buf.data(), 4096}}, &first));
  disk->submit(request(RequestType::Read, 8192, {{buf.data() + 4096, 4096}}, &second));
  faults_->throw_on_kick = true;
  EXPECT_NO_THROW(disk->kick());
  EXPECT_EQ(first, -EIO);
  EXPECT_EQ(second, -EIO);
  EXPECT_EQ(disk->in_flight(), 0u);
  disk->drain();
  // The disk stays failed: later requests fail at once, nothing hangs.
  faults_->throw_on_kick = false;
  int later = 1;
  disk->submit(request(RequestType::Read, 0, {{buf.data(), 4096}}, &later));
  EXPECT_EQ(later, -EIO);
  EXPECT_EQ(disk->in_flight(), 0u);
}

// Linux reports a writeback error to fdatasync once; after that
// every flush and every durable write fails until restart (QEMU does the same).
TEST_F(DiskFailure, FailedFdatasyncMakesLaterFlushesAndDurableWritesFail) {
  auto disk = open(CacheMode::Writeback);
  AlignedBuffer buf(4096, 4096);
  ASSERT_EQ(test::run_write(*disk, 0, buf.data(), 4096), 0);
  faults_->failing_fdatasyncs = 1;
  EXPECT_EQ(test::run_flush(*disk), -EIO);
  ASSERT_EQ(faults_->failing_fdatasyncs, 0);  // the host would now report success
  EXPECT_EQ(test::run_flush(*disk), -EIO);
  EXPECT_EQ(test::run_flush(*disk), -EIO);
  // Plain cached writes still go to the page cache; durable ones cannot be promised.
  EXPECT_EQ(test::run_write(*disk, 4096, buf.data(), 4096), 0);
  disk->set_write_cache(false);
  EXPECT_EQ(test::run_write(*disk, 8192, buf.data(), 4096), -EIO);
}

// unsafe ignores the guest's flushes, but an operator's host_sync flush
// (the control API's FlushDisks) that fails sticks like any failed sync:
// the next one fails too, while the guest's flushes stay no-ops.
TEST_F(DiskFailure, FailedHostSyncFlushInUnsafeIsSticky) {
  auto disk = open(CacheMode::Unsafe);
  AlignedBuffer buf(4096, 4096);
  ASSERT_EQ(test::run_write(*disk, 0, buf.data(), 4096), 0);
  auto host_flush = [] {
    DiskRequest r;
    r.op = RequestType::Flush;
    r.host_sync = true;
    return r;
  };
  faults_->failing_fdatasyncs = 1;
  EXPECT_EQ(test::run_request(*disk, host_flush()), -EIO);
  ASSERT_EQ(faults_->failing_fdatasyncs, 0);  // the host would now report success
  EXPECT_EQ(test::run_request(*disk, host_flush()), -EIO);
  EXPECT_EQ(test::run_flush(*disk), 0);
}

TEST_F(DiskFailure, FailedBatchSyncInWritethroughIsSticky) {
  auto disk = open(CacheMode::Writethrough);
  AlignedBuffer buf(3UL * 4096, 4096);
  faults_->failing_fdatasyncs = 1;
  int a = 1, b = 1;
  // Two writes kicked together share one batch fdatasync (image_disk.h).
  disk->submit(request(RequestType::Write, 0, {{buf.data(), 4096}}, &a));
  disk->submit(request(RequestType::Write, 8192, {{buf.data() + 4096, 4096}}, &b));
  disk->kick();
  disk->drain();
  EXPECT_EQ(a, -EIO);
  EXPECT_EQ(b, -EIO);
  EXPECT_EQ(test::run_write(*disk, 16384, buf.data() + 8192, 4096), -EIO);
  EXPECT_EQ(test::run_flush(*disk), -EIO);
}

// The synchronous engine does a bounded amount of work per kick,
// so one huge request cannot hold the event-loop thread.
TEST_F(DiskFailure, SyncEngineBoundsTheBytesMovedPerKick) {
  auto engine = make_sync_engine();
  UniqueFd fd(::open(path_.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  constexpr uint64_t kLen = 8 << 20;
  AlignedBuffer buf(kLen, 4096);
  const iovec iov{buf.data(), kLen};
  IoOp op{IoOp::Kind::Read, fd.get(), 0, {&iov, 1}, 0, 0, false, 5, false, {}};
  engine->prepare(op);
  std::vector<IoCompletion> done;
  size_t kicks = 0;
  while (done.empty()) {
    ASSERT_LT(kicks, 1000u);
    engine->kick();
    ++kicks;
    engine->reap(done);
  }
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].result, static_cast<int64_t>(kLen));
  EXPECT_GE(kicks, kLen / kSyncBytesPerKick);
  EXPECT_EQ(buf.data()[kLen - 1], test::pattern_byte(kLen - 1));
}

// The same bound at the Disk: one process_completions() call (one event-loop
// turn) moves at most one engine budget, so a huge request on the sync
// engine takes many turns and other loop work runs in between.
TEST_F(DiskFailure, HugeSyncRequestTakesManyLoopTurns) {
  auto disk = open(CacheMode::Writeback);
  constexpr uint64_t kLen = 8 << 20;
  AlignedBuffer buf(kLen, 4096);
  int result = 1;
  disk->submit(request(RequestType::Read, 0, {{buf.data(), kLen}}, &result));
  disk->kick();
  size_t turns = 0;
  while (result == 1) {
    ASSERT_LT(turns, 1000u);
    disk->process_completions();
    ++turns;
  }
  EXPECT_EQ(result, 0);
  EXPECT_GE(turns, kLen / kSyncBytesPerKick - 1);
  EXPECT_EQ(buf.data()[kLen - 1], test::pattern_byte(kLen - 1));
}

// An engine that never completes a request (one it lost): drain() gives up
// after kMaxIdleDrainRounds rounds that reaped nothing, failing the request
// and the engine, instead of waiting forever.
TEST_F(DiskFailure, DrainFailsARequestTheEngineNeverCompletesAfterTheIdleRoundLimit) {
  auto state = std::make_shared<test::StallState>();
  DiskOptions o;
  o.path = path_;
  auto disk = open_disk_with_engine(o, std::make_unique<test::StallingEngine>(state));
  AlignedBuffer buf(4096, 4096);
  int result = 1;
  disk->submit(request(RequestType::Read, 0, {{buf.data(), 4096}}, &result));
  disk->kick();
  disk->drain();
  EXPECT_EQ(result, -EIO);  // not the engine's -ETIMEDOUT safety valve
  EXPECT_EQ(state->wait_calls, static_cast<uint64_t>(ImageDisk::kMaxIdleDrainRounds));
  EXPECT_EQ(disk->in_flight(), 0u);
  // The engine is failed: a later request fails at once, nothing hangs.
  int later = 1;
  disk->submit(request(RequestType::Read, 0, {{buf.data(), 4096}}, &later));
  EXPECT_EQ(later, -EIO);
}

// The limit counts quiet rounds in a row: an engine that completes one
// request every (limit - 1) rounds keeps a drain going until all are done.
TEST_F(DiskFailure, DrainWaitsForAnEngineThatKeepsCompletingSlowly) {
  auto state = std::make_shared<test::StallState>();
  state->waits_per_completion = ImageDisk::kMaxIdleDrainRounds - 1;
  DiskOptions o;
  o.path = path_;
  auto disk = open_disk_with_engine(o, std::make_unique<test::StallingEngine>(state));
  AlignedBuffer buf(size_t{3} * 4096, 4096);
  int results[3] = {1, 1, 1};
  for (int i = 0; i < 3; ++i) {
    const uint64_t at = 4096 * static_cast<uint64_t>(i);
    disk->submit(request(RequestType::Read, at, {{buf.data() + at, 4096}}, &results[i]));
  }
  disk->kick();
  disk->drain();
  for (const int r : results) EXPECT_EQ(r, 0);
  // More quiet rounds in all than the limit, never that many in a row.
  EXPECT_GT(state->wait_calls, static_cast<uint64_t>(ImageDisk::kMaxIdleDrainRounds));
}

}  // namespace
}  // namespace minivmm::storage
