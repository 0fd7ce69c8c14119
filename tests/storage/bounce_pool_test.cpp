// O_DIRECT bounce memory is bounded per disk, not per request: a guest that
// keeps many misaligned transfers in flight gets them through a fixed pool,
// the rest waiting their turn, all completing with the right data.
#include <poll.h>

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "mode_engine_param.h"
#include "storage/bounce_pool.h"
#include "storage/image_disk.h"
#include "test_image.h"
#include "tests/storage/tracing_engine.h"

namespace minivmm::storage {
namespace {

TEST(BouncePool, AllocatesNothingBeforeTheFirstTake) {
  BouncePool pool({.capacity = 4, .buffer_bytes = 8192, .alignment = 4096});
  EXPECT_EQ(pool.allocated_bytes(), 0u);
  EXPECT_EQ(pool.bound_bytes(), 4u * 8192);
}

TEST(BouncePool, HandsOutAtMostCapacityBuffersThenNone) {
  BouncePool pool({.capacity = 3, .buffer_bytes = 8192, .alignment = 4096});
  std::vector<AlignedBuffer> taken;
  for (int i = 0; i < 3; ++i) {
    taken.push_back(pool.take());
    ASSERT_NE(taken.back().data(), nullptr);
    EXPECT_EQ(taken.back().size(), 8192u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(taken.back().data()) % 4096, 0u);
  }
  EXPECT_EQ(pool.take().data(), nullptr);
  EXPECT_EQ(pool.taken(), 3u);
  EXPECT_EQ(pool.allocated_bytes(), pool.bound_bytes());
}

TEST(BouncePool, AReturnedBufferIsReusedNotReallocated) {
  BouncePool pool({.capacity = 1, .buffer_bytes = 8192, .alignment = 4096});
  AlignedBuffer first = pool.take();
  uint8_t* const address = first.data();
  pool.give_back(std::move(first));
  EXPECT_EQ(pool.taken(), 0u);
  AlignedBuffer again = pool.take();
  EXPECT_EQ(again.data(), address);
  EXPECT_EQ(pool.allocated_bytes(), 8192u);
}

// Many misaligned transfers at once, on an O_DIRECT disk.
class BounceBound : public ::testing::TestWithParam<test::ModeEngine> {
 protected:
  static constexpr size_t kRequests = 64;
  static constexpr uint64_t kLen = 2 * ImageDisk::kBounceChunkBytes;  // two chunks each
  static constexpr uint64_t kImageSize = kRequests * kLen;            // a range of its own each

  void SetUp() override {
    SKIP_IF_NO_URING(GetParam().engine);
    path_ = dir_.file("disk.img");
    test::make_image(path_, kImageSize);
    DiskOptions o;
    o.path = path_;
    o.cache = GetParam().mode;
    disk_ = test::open_traced(o, GetParam().engine, trace_);
    // One spare byte in front of each guest buffer: every one is misaligned.
    memory_.resize(kRequests * (kLen + 1));
    iovs_.resize(kRequests);
    results_.assign(kRequests, 1);
  }
  uint8_t* guest_buffer(size_t i) { return memory_.data() + i * (kLen + 1) + 1; }
  uint64_t offset(size_t i) const { return i * kLen; }

  void submit(RequestType op, size_t i) {
    iovs_[i] = {guest_buffer(i), kLen};
    DiskRequest r;
    r.op = op;
    r.offset = offset(i);
    r.iov = {&iovs_[i], 1};
    r.done = [this, i](int result) { results_[i] = result; };
    disk_->submit(std::move(r));
  }
  bool all_done() const {
    for (const int r : results_) {
      if (r == 1) return false;
    }
    return true;
  }
  // The event loop's way: wait for the completion fd, one round per wake.
  void run_until_all_done() {
    disk_->kick();
    while (!all_done()) {
      pollfd pfd{disk_->completion_fd(), POLLIN, 0};
      ASSERT_EQ(::poll(&pfd, 1, 10000), 1) << "completion fd never became readable";
      disk_->process_completions();
    }
  }

  test::TempDir dir_;
  std::string path_;
  std::shared_ptr<IoTrace> trace_ = std::make_shared<IoTrace>();
  std::unique_ptr<Disk> disk_;
  std::vector<uint8_t> memory_;
  std::vector<iovec> iovs_;
  std::vector<int> results_;
};

TEST_P(BounceBound, ManyMisalignedReadsNeverHoldMoreThanThePoolAndAllReadTheImage) {
  for (size_t i = 0; i < kRequests; ++i) submit(RequestType::Read, i);
  run_until_all_done();
  for (size_t i = 0; i < kRequests; ++i) {
    ASSERT_EQ(results_[i], 0) << "request " << i;
    for (uint64_t b = 0; b < kLen; b += 4099) {
      ASSERT_EQ(guest_buffer(i)[b], test::pattern_byte(offset(i) + b)) << "request " << i;
    }
  }
  const DiskStats s = disk_->stats();
  // 64 requests of 2 chunks: 16 MiB of bounce memory without a per-disk bound.
  EXPECT_EQ(s.bounce_bytes_peak, ImageDisk::kBouncePoolBytes);
  EXPECT_EQ(s.bounce_waits, kRequests - ImageDisk::kBouncePoolBuffers);
  EXPECT_EQ(disk_->in_flight(), 0u);
}

TEST_P(BounceBound, ManyMisalignedWritesNeverHoldMoreThanThePoolAndAllReachTheImage) {
  for (size_t i = 0; i < kRequests; ++i) {
    for (uint64_t b = 0; b < kLen; ++b) guest_buffer(i)[b] = static_cast<uint8_t>(i * 13 + b);
    submit(RequestType::Write, i);
  }
  run_until_all_done();
  for (size_t i = 0; i < kRequests; ++i) ASSERT_EQ(results_[i], 0) << "request " << i;
  EXPECT_EQ(disk_->stats().bounce_bytes_peak, ImageDisk::kBouncePoolBytes);
  disk_.reset();
  for (size_t i = 0; i < kRequests; ++i) {
    const std::vector<uint8_t> on_disk = test::read_file(path_, offset(i), kLen);
    ASSERT_EQ(0, std::memcmp(on_disk.data(), guest_buffer(i), kLen)) << "request " << i;
  }
}

TEST_P(BounceBound, DrainCompletesRequestsStillWaitingForABuffer) {
  for (size_t i = 0; i < kRequests; ++i) submit(RequestType::Read, i);
  disk_->drain();
  EXPECT_TRUE(all_done());
  for (size_t i = 0; i < kRequests; ++i) EXPECT_EQ(results_[i], 0) << "request " << i;
  EXPECT_EQ(disk_->in_flight(), 0u);
  EXPECT_LE(disk_->stats().bounce_bytes_peak, ImageDisk::kBouncePoolBytes);
}

// Waiting is only for a bounce buffer: an aligned request submitted behind
// the waiters reaches the engine at once.
TEST_P(BounceBound, AnAlignedRequestDoesNotQueueBehindBounceWaiters) {
  for (size_t i = 0; i < kRequests; ++i) submit(RequestType::Read, i);
  AlignedBuffer aligned(4096, 4096);
  const iovec v{aligned.data(), 4096};
  constexpr uint64_t kAlignedOffset = kImageSize - 4096;
  int aligned_result = 1;
  DiskRequest r;
  r.op = RequestType::Read;
  r.offset = kAlignedOffset;
  r.iov = {&v, 1};
  r.done = [&](int result) { aligned_result = result; };
  trace_->clear();
  disk_->submit(std::move(r));
  ASSERT_EQ(trace_->events().size(), 1u);
  EXPECT_EQ(trace_->events()[0].kind, IoOp::Kind::Read);
  EXPECT_EQ(trace_->events()[0].offset, kAlignedOffset);
  run_until_all_done();
  disk_->drain();
  EXPECT_EQ(aligned_result, 0);
  EXPECT_EQ(aligned.data()[0], test::pattern_byte(kAlignedOffset));
}

std::vector<test::ModeEngine> direct_modes_both_engines() {
  std::vector<test::ModeEngine> out;
  for (const test::ModeEngine& m : test::all_modes_both_engines()) {
    if (traits(m.mode).direct) out.push_back(m);
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(DirectModes, BounceBound, ::testing::ValuesIn(direct_modes_both_engines()),
                         test::mode_engine_name);

}  // namespace
}  // namespace minivmm::storage
