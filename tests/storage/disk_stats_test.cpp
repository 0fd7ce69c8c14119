// Disk::stats(): each counter, per mode and engine, checked against what the
// tracing engine saw reach the host.
#include <gtest/gtest.h>

#include <memory>

#include "mode_engine_param.h"
#include "storage/aligned_buffer.h"
#include "test_image.h"

namespace minivmm::storage {
namespace {

using test::ModeEngine;
using Kind = IoOp::Kind;

class DiskStatsPerMode : public ::testing::TestWithParam<ModeEngine> {
 protected:
  void SetUp() override {
    SKIP_IF_NO_URING(GetParam().engine);
    path_ = dir_.file("disk.img");
    test::make_image(path_, 1 << 20);
    DiskOptions o;
    o.path = path_;
    o.cache = GetParam().mode;
    disk_ = test::open_traced(o, GetParam().engine, trace_);
  }
  int zero_or_discard(RequestType op, uint64_t offset) {
    DiskRequest r;
    r.op = op;
    r.offset = offset;
    r.length = 8192;
    return test::run_request(*disk_, std::move(r));
  }

  test::TempDir dir_;
  std::string path_;
  std::shared_ptr<IoTrace> trace_ = std::make_shared<IoTrace>();
  std::unique_ptr<Disk> disk_;
  AlignedBuffer buf_{4096, 4096};
};

TEST_P(DiskStatsPerMode, StartAtZero) {
  const DiskStats s = disk_->stats();
  EXPECT_EQ(s.reads + s.writes + s.dsync_writes + s.batched_durable_writes + s.flush_requests +
                s.fdatasyncs + s.discards + s.write_zeroes,
            0u);
}

TEST_P(DiskStatsPerMode, CountWhatReachedTheHost) {
  const CacheMode mode = GetParam().mode;
  const bool durable = !traits(mode).write_cache;  // writethrough, directsync
  ASSERT_EQ(test::run_write(*disk_, 0, buf_.data(), 4096), 0);
  ASSERT_EQ(test::run_write(*disk_, 65536, buf_.data(), 4096), 0);
  ASSERT_EQ(test::run_read(*disk_, 4096, buf_.data(), 4096), 0);
  ASSERT_EQ(test::run_flush(*disk_), 0);
  ASSERT_EQ(zero_or_discard(RequestType::Discard, 131072), 0);
  ASSERT_EQ(zero_or_discard(RequestType::WriteZeroes, 262144), 0);

  const DiskStats s = disk_->stats();
  EXPECT_EQ(s.reads, 1u);
  EXPECT_EQ(s.writes, 2u);
  // One write at a time: the lone-write route, RWF_DSYNC.
  EXPECT_EQ(s.dsync_writes, durable ? 2u : 0u);
  EXPECT_EQ(s.batched_durable_writes, 0u);
  EXPECT_EQ(s.durable_writes(), durable ? s.writes : 0u);
  EXPECT_EQ(s.flush_requests, 1u);
  // The flush, plus (write cache off) one after each fallocate.
  const uint64_t syncs = mode == CacheMode::Unsafe ? 0 : 1 + (durable ? 2 : 0);
  EXPECT_EQ(s.fdatasyncs, syncs);
  EXPECT_EQ(s.discards, 1u) << "the test filesystem must support FALLOC_FL_PUNCH_HOLE";
  EXPECT_EQ(s.write_zeroes, 1u);

  // Independent bookkeeping, same answers.
  EXPECT_EQ(trace_->issued(Kind::Write), s.writes);
  EXPECT_EQ(trace_->issued(Kind::Write, true), s.dsync_writes);
  EXPECT_EQ(trace_->issued(Kind::Fdatasync), s.fdatasyncs);
}

TEST_P(DiskStatsPerMode, RejectedRequestsAreNotCounted) {
  // Beyond the end: refused before reaching the host.
  ASSERT_NE(test::run_write(*disk_, 1 << 20, buf_.data(), 4096), 0);
  ASSERT_NE(test::run_read(*disk_, 1 << 20, buf_.data(), 4096), 0);
  const DiskStats s = disk_->stats();
  EXPECT_EQ(s.writes, 0u);
  EXPECT_EQ(s.reads, 0u);
  EXPECT_EQ(s.dsync_writes, 0u);
}

// The control API's FlushDisks: a host_sync flush reaches the host as an
// fdatasync in every mode, unsafe included (whose guest flushes never do),
// and leaves nothing acknowledged-but-not-durable behind.
TEST_P(DiskStatsPerMode, HostSyncFlushIsAnFdatasyncInEveryModeAndEmptiesTheWindow) {
  const CacheMode mode = GetParam().mode;
  ASSERT_EQ(test::run_write(*disk_, 0, buf_.data(), 4096), 0);
  const DiskStats before = disk_->stats();
  // Writes acked from the write cache are at risk until a sync covers them.
  EXPECT_EQ(before.at_risk_bytes, traits(mode).write_cache ? 4096u : 0u);
  DiskRequest flush;
  flush.op = RequestType::Flush;
  flush.host_sync = true;
  ASSERT_EQ(test::run_request(*disk_, std::move(flush)), 0);
  const DiskStats after = disk_->stats();
  EXPECT_EQ(after.fdatasyncs, before.fdatasyncs + 1);
  EXPECT_EQ(trace_->issued(Kind::Fdatasync), after.fdatasyncs);
  EXPECT_EQ(after.at_risk_bytes, 0u);
  EXPECT_EQ(after.at_risk_requests, 0u);
}

INSTANTIATE_TEST_SUITE_P(AllModes, DiskStatsPerMode,
                         ::testing::ValuesIn(test::all_modes_both_engines()),
                         test::mode_engine_name);

}  // namespace
}  // namespace minivmm::storage
