// The durability window (DiskStats::at_risk_bytes/at_risk_requests): what a
// host power cut could lose right now. Driven through a manual engine whose
// completions the test releases one by one, so the order of "write
// completed" and "fdatasync issued" is chosen exactly. Also the flush
// latency histogram, the stats line and the cross-thread registry.
#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "mode_engine_param.h"
#include "storage/aligned_buffer.h"
#include "storage/durability_window.h"
#include "storage/open_disk.h"
#include "test_image.h"

namespace minivmm::storage {
namespace {

using Kind = IoOp::Kind;

// Holds every prepared operation until the test completes it.
struct ManualOps {
  struct Op {
    Kind kind;
    uint64_t tag;
    uint64_t length;
    bool dsync;
  };
  std::vector<Op> held;            // prepared, not completed
  std::deque<IoCompletion> ready;  // completed, not reaped
  UniqueFd efd{eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};

  size_t count(Kind k) const {
    return static_cast<size_t>(
        std::count_if(held.begin(), held.end(), [k](const Op& o) { return o.kind == k; }));
  }
  // Completes the oldest held operation of `kind` (result: its length for a
  // transfer, else 0, unless `result` is given).
  bool complete(Kind kind, std::optional<int64_t> result = std::nullopt) {
    auto it =
        std::find_if(held.begin(), held.end(), [kind](const Op& o) { return o.kind == kind; });
    if (it == held.end()) return false;
    finish(it, result);
    return true;
  }
  void complete_all() {
    while (!held.empty()) finish(held.begin(), std::nullopt);
  }
  void finish(std::vector<Op>::iterator it, std::optional<int64_t> result) {
    const bool transfer = it->kind == Kind::Read || it->kind == Kind::Write;
    ready.push_back(
        {it->tag, result ? *result : (transfer ? static_cast<int64_t>(it->length) : 0)});
    held.erase(it);
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(efd.get(), &one, sizeof(one));
  }
};

class ManualEngine final : public IoEngine {
 public:
  explicit ManualEngine(std::shared_ptr<ManualOps> ops) : ops_(std::move(ops)) {}
  std::string_view name() const override { return "manual"; }
  void prepare(IoOp& op) override {
    uint64_t len = op.length;
    if (op.kind == Kind::Read || op.kind == Kind::Write) {
      len = 0;
      for (const iovec& v : op.iov) len += v.iov_len;
    }
    ops_->held.push_back({op.kind, op.tag, len, op.dsync});
  }
  void kick() override {}
  int completion_fd() const override { return ops_->efd.get(); }
  void reap(std::vector<IoCompletion>& out) override {
    uint64_t v;
    [[maybe_unused]] ssize_t n = read(ops_->efd.get(), &v, sizeof(v));
    out.insert(out.end(), ops_->ready.begin(), ops_->ready.end());
    ops_->ready.clear();
  }
  // drain() (the destructor): everything outstanding completes.
  void wait() override {
    if (ops_->ready.empty()) ops_->complete_all();
  }

 private:
  std::shared_ptr<ManualOps> ops_;
};

constexpr uint64_t kBlock = 4096;

class Window : public ::testing::Test {
 protected:
  void open(CacheMode mode) {
    path_ = dir_.file("disk.img");
    test::make_image(path_, 1 << 20);
    DiskOptions o;
    o.path = path_;
    o.cache = mode;
    disk_ = open_disk_with_engine(o, std::make_unique<ManualEngine>(ops_));
  }
  // Submits and kicks a one-block write at block `n`; its result lands in results_.
  size_t write(uint64_t n) {
    const size_t i = results_.size();
    results_.push_back(1);
    DiskRequest r;
    r.op = RequestType::Write;
    r.offset = n * kBlock;
    r.iov = {&iov_, 1};
    r.done = [this, i](int res) { results_[i] = res; };
    disk_->submit(std::move(r));
    disk_->kick();
    return i;
  }
  size_t flush() {
    const size_t i = results_.size();
    results_.push_back(1);
    DiskRequest r;
    r.op = RequestType::Flush;
    r.done = [this, i](int res) { results_[i] = res; };
    disk_->submit(std::move(r));
    disk_->kick();
    return i;
  }
  // Completes the oldest held op of `kind` and runs the disk's completion round.
  void complete(Kind kind, std::optional<int64_t> result = std::nullopt) {
    ASSERT_TRUE(ops_->complete(kind, result)) << "no held " << to_string(kind);
    disk_->process_completions();
  }
  uint64_t bytes() const { return disk_->stats().at_risk_bytes; }
  uint64_t requests() const { return disk_->stats().at_risk_requests; }

  test::TempDir dir_;
  std::string path_;
  std::shared_ptr<ManualOps> ops_ = std::make_shared<ManualOps>();
  std::unique_ptr<Disk> disk_;
  AlignedBuffer buf_{kBlock, 4096};
  const iovec iov_{buf_.data(), kBlock};  // every request's view (DiskRequest::iov)
  std::vector<int> results_;
};

class WindowWriteCacheOn : public Window, public ::testing::WithParamInterface<CacheMode> {};

TEST_P(WindowWriteCacheOn, GrowsWithAcksAndShrinksOnlyWithALaterFdatasync) {
  open(GetParam());
  EXPECT_EQ(bytes(), 0u);
  const size_t a = write(0);
  EXPECT_EQ(bytes(), 0u) << "in flight is not acknowledged yet";
  complete(Kind::Write);
  ASSERT_EQ(results_[a], 0);
  EXPECT_EQ(bytes(), kBlock);
  EXPECT_EQ(requests(), 1u);

  // A flush's fdatasync is issued now: it covers A, not B (B completes after).
  const size_t f = flush();
  ASSERT_EQ(ops_->count(Kind::Fdatasync), 1u);
  const size_t b = write(1);
  complete(Kind::Write);
  ASSERT_EQ(results_[b], 0);
  EXPECT_EQ(bytes(), 2 * kBlock);
  EXPECT_EQ(requests(), 2u);
  complete(Kind::Fdatasync);
  ASSERT_EQ(results_[f], 0);
  EXPECT_EQ(bytes(), kBlock) << "B completed after the fdatasync was issued: still at risk";
  EXPECT_EQ(requests(), 1u);

  // A write in flight while a whole flush runs is not covered by it either.
  write(2);
  const size_t g = flush();
  complete(Kind::Fdatasync);
  ASSERT_EQ(results_[g], 0);
  EXPECT_EQ(bytes(), 0u) << "the flush covered B; C is not acknowledged yet";
  complete(Kind::Write);
  EXPECT_EQ(bytes(), kBlock) << "C completed after the flush's fdatasync started";
  EXPECT_EQ(requests(), 1u);

  flush();
  complete(Kind::Fdatasync);
  EXPECT_EQ(bytes(), 0u);
  EXPECT_EQ(requests(), 0u);
  EXPECT_EQ(disk_->stats().writes, 3u);
}

TEST_P(WindowWriteCacheOn, AFailedFdatasyncShrinksNothing) {
  open(GetParam());
  write(0);
  complete(Kind::Write);
  const size_t f = flush();
  complete(Kind::Fdatasync, -EIO);
  EXPECT_EQ(results_[f], -EIO);
  EXPECT_EQ(bytes(), kBlock);
  EXPECT_EQ(requests(), 1u);
}

TEST_P(WindowWriteCacheOn, OutOfOrderSyncsKeepTheNewestCover) {
  open(GetParam());
  write(0);
  complete(Kind::Write);
  flush();  // covers A
  write(1);
  complete(Kind::Write);
  flush();  // covers A and B
  // The second fdatasync completes first, then the first: the window stays 0.
  ASSERT_EQ(ops_->count(Kind::Fdatasync), 2u);
  const auto second = ops_->held.back();
  ops_->held.pop_back();
  ops_->ready.push_back({second.tag, 0});
  const uint64_t one = 1;
  ASSERT_EQ(::write(ops_->efd.get(), &one, sizeof(one)), 8);
  disk_->process_completions();
  EXPECT_EQ(bytes(), 0u);
  complete(Kind::Fdatasync);
  EXPECT_EQ(bytes(), 0u);
  EXPECT_EQ(requests(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, WindowWriteCacheOn,
                         ::testing::Values(CacheMode::Writeback, CacheMode::None),
                         [](const auto& test_param) {
                           return std::string(to_string(test_param.param));
                         });

class WindowWriteCacheOff : public Window, public ::testing::WithParamInterface<CacheMode> {};

TEST_P(WindowWriteCacheOff, StaysZeroWhileEveryWriteIsDurable) {
  open(GetParam());
  // A lone write: RWF_DSYNC.
  const size_t a = write(0);
  ASSERT_EQ(ops_->held.back().dsync, true);
  complete(Kind::Write);
  ASSERT_EQ(results_[a], 0);
  EXPECT_EQ(bytes(), 0u);
  // A write joining a durable one in flight: plain, then an fdatasync before it completes.
  write(1);
  write(2);
  complete(Kind::Write);
  complete(Kind::Write);
  EXPECT_EQ(bytes(), 0u);
  complete(Kind::Fdatasync);
  EXPECT_EQ(bytes(), 0u);
  flush();
  complete(Kind::Fdatasync);
  EXPECT_EQ(bytes(), 0u);
  EXPECT_EQ(requests(), 0u);
  EXPECT_EQ(disk_->stats().writes, 3u);
}

TEST_P(WindowWriteCacheOff, GuestTurningTheCacheOnOpensTheWindow) {
  open(GetParam());
  disk_->set_write_cache(true);  // writethrough -> writeback, directsync -> none
  write(0);
  complete(Kind::Write);
  EXPECT_EQ(bytes(), kBlock);
  disk_->set_write_cache(false);
  // A lone RWF_DSYNC write makes itself durable, not the earlier one.
  write(1);
  complete(Kind::Write);
  EXPECT_EQ(bytes(), kBlock);
  EXPECT_EQ(requests(), 1u);
  flush();
  complete(Kind::Fdatasync);
  EXPECT_EQ(bytes(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, WindowWriteCacheOff,
                         ::testing::Values(CacheMode::Writethrough, CacheMode::Directsync),
                         [](const auto& test_param) {
                           return std::string(to_string(test_param.param));
                         });

TEST_F(Window, UnsafeIgnoredFlushesNeverShrinkIt) {
  open(CacheMode::Unsafe);
  for (uint64_t n = 0; n < 3; ++n) {
    write(n);
    complete(Kind::Write);
    const size_t f = flush();
    EXPECT_EQ(ops_->count(Kind::Fdatasync), 0u) << "unsafe issues no fdatasync";
    complete(Kind::Noop);
    EXPECT_EQ(results_[f], 0);
    EXPECT_EQ(bytes(), (n + 1) * kBlock);
    EXPECT_EQ(requests(), n + 1);
  }
  // The guest turning its cache off does not make unsafe durable either.
  disk_->set_write_cache(false);
  write(3);
  complete(Kind::Write);
  EXPECT_EQ(bytes(), 4 * kBlock);
  EXPECT_EQ(disk_->stats().fdatasyncs, 0u);
  EXPECT_EQ(disk_->stats().flush_requests, 3u);
}

TEST_F(Window, WriteZeroesCountsReadsAndDiscardsDoNot) {
  open(CacheMode::Writeback);
  DiskRequest z;
  z.op = RequestType::WriteZeroes;
  z.offset = 0;
  z.length = 8192;
  disk_->submit(std::move(z));
  disk_->kick();
  complete(Kind::Fallocate);
  EXPECT_EQ(bytes(), 8192u);
  DiskRequest d;
  d.op = RequestType::Discard;
  d.offset = 65536;
  d.length = 8192;
  disk_->submit(std::move(d));
  disk_->kick();
  complete(Kind::Fallocate);
  DiskRequest r;
  r.op = RequestType::Read;
  r.offset = 0;
  r.iov = {&iov_, 1};
  disk_->submit(std::move(r));
  disk_->kick();
  complete(Kind::Read);
  EXPECT_EQ(bytes(), 8192u);
  EXPECT_EQ(requests(), 1u);
}

TEST_F(Window, FailedWritesAreNotAcknowledged) {
  open(CacheMode::Writeback);
  const size_t a = write(0);
  complete(Kind::Write, -EIO);
  EXPECT_EQ(results_[a], -EIO);
  EXPECT_EQ(bytes(), 0u);
}

TEST_F(Window, FlushLatencyIsRecordedPerFlush) {
  open(CacheMode::Writeback);
  for (int i = 0; i < 5; ++i) {
    flush();
    complete(Kind::Fdatasync);
  }
  const DiskStats s = disk_->stats();
  EXPECT_EQ(s.flush_latency_us.count(), 5u);
  EXPECT_LE(s.flush_latency_us.percentile(0.5), s.flush_latency_us.max());
}

TEST_F(Window, PublishedStatsFollowTheLoopThreadsAndTheRegistryListsTheDisk) {
  open(CacheMode::Writeback);
  write(0);
  complete(Kind::Write);
  const auto* source = dynamic_cast<const DiskStatsSource*>(disk_.get());
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->published_stats().at_risk_bytes, kBlock);
  EXPECT_EQ(source->published_stats().writes, 1u);
  flush();  // submit() publishes too
  EXPECT_EQ(source->published_stats().flush_requests, 1u);
  EXPECT_GE(log_registered_disk_stats(), 1u);
  const size_t before = log_registered_disk_stats();
  disk_.reset();
  EXPECT_EQ(log_registered_disk_stats(), before - 1);
}

// Real engines, every mode: after a flush nothing is at risk where flushes
// are honoured; unsafe keeps all of it.
class WindowRealEngines : public ::testing::TestWithParam<test::ModeEngine> {};

TEST_P(WindowRealEngines, AfterAFlush) {
  SKIP_IF_NO_URING(GetParam().engine);
  test::TempDir dir;
  const std::string path = dir.file("disk.img");
  test::make_image(path, 1 << 20);
  DiskOptions o;
  o.path = path;
  o.cache = GetParam().mode;
  auto trace = std::make_shared<IoTrace>();
  auto disk = test::open_traced(o, GetParam().engine, trace);
  AlignedBuffer buf(kBlock, 4096);
  for (uint64_t n = 0; n < 3; ++n)
    ASSERT_EQ(test::run_write(*disk, n * kBlock, buf.data(), kBlock), 0);
  const bool cache = traits(GetParam().mode).write_cache;
  EXPECT_EQ(disk->stats().at_risk_bytes, cache ? 3 * kBlock : 0);
  ASSERT_EQ(test::run_flush(*disk), 0);
  const bool kept = GetParam().mode == CacheMode::Unsafe;
  EXPECT_EQ(disk->stats().at_risk_bytes, kept ? 3 * kBlock : 0);
  EXPECT_EQ(disk->stats().at_risk_requests, kept ? 3u : 0u);
  EXPECT_EQ(disk->stats().flush_latency_us.count(), 1u);
}

INSTANTIATE_TEST_SUITE_P(All, WindowRealEngines,
                         ::testing::ValuesIn(test::all_modes_both_engines()),
                         test::mode_engine_name);

TEST(LatencyHistogram, Buckets) {
  EXPECT_EQ(LatencyHistogram::bucket_of(0), 0u);
  EXPECT_EQ(LatencyHistogram::bucket_of(1), 1u);
  EXPECT_EQ(LatencyHistogram::bucket_of(2), 2u);
  EXPECT_EQ(LatencyHistogram::bucket_of(3), 2u);
  EXPECT_EQ(LatencyHistogram::bucket_of(1000), 10u);  // [512, 1023]
  EXPECT_EQ(LatencyHistogram::bucket_upper(10), 1023u);
  EXPECT_EQ(LatencyHistogram::bucket_of(UINT64_MAX), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogram, Percentiles) {
  LatencyHistogram h;
  EXPECT_EQ(h.percentile(0.5), 0u);
  EXPECT_EQ(h.max(), 0u);
  // 98 fast flushes (100 us), one at 5 ms, one at 40 ms.
  for (int i = 0; i < 98; ++i) h.record(100);
  h.record(5000);
  h.record(40000);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.percentile(0.50), 127u);   // bucket [64, 127]
  EXPECT_EQ(h.percentile(0.98), 127u);   // the 98th value is still fast
  EXPECT_EQ(h.percentile(0.99), 8191u);  // the 99th is 5000: bucket [4096, 8191]
  EXPECT_EQ(h.percentile(1.0), 40000u);  // bucket [32768, 65535] clamped to max
  EXPECT_EQ(h.max(), 40000u);
  // Every reported percentile bounds the true one from above, within 2x.
  LatencyHistogram one;
  one.record(700);
  EXPECT_EQ(one.percentile(0.5), 700u);  // clamped to max
  EXPECT_EQ(one.percentile(0.99), 700u);
}

TEST(DiskStatsLine, KeepsThePrefixAndAppendsTheNewFields) {
  DiskStats s;
  s.reads = 1;
  s.writes = 2;
  s.dsync_writes = 3;
  s.batched_durable_writes = 4;
  s.flush_requests = 5;
  s.fdatasyncs = 6;
  s.discards = 7;
  s.write_zeroes = 8;
  s.at_risk_bytes = 4096;
  s.at_risk_requests = 1;
  s.flush_latency_us.record(100);
  EXPECT_EQ(format_disk_stats(2, s),
            "disk 2 stats: reads=1 writes=2 dsync_writes=3 batched_durable_writes=4 "
            "flush_requests=5 fdatasyncs=6 discards=7 write_zeroes=8 at_risk_bytes=4096 "
            "at_risk_requests=1 flush_p50_us=100 flush_p99_us=100 flush_max_us=100");
}

TEST(DurabilityWindowCounts, ASyncCoversOnlyAcksBeforeItsMarkAndOutOfOrderSyncsNeverRegrow) {
  DurabilityWindow w;
  w.note_ack(4096);
  const DurabilityWindow::Mark first = w.mark();
  w.note_ack(512);
  const DurabilityWindow::Mark second = w.mark();
  w.note_ack(1024);  // after both marks: no sync covers it
  EXPECT_EQ(w.at_risk_bytes(), 4096u + 512 + 1024);
  w.note_sync_done(second);
  EXPECT_EQ(w.at_risk_bytes(), 1024u);
  EXPECT_EQ(w.at_risk_requests(), 1u);
  w.note_sync_done(first);  // the older sync completing late changes nothing
  EXPECT_EQ(w.at_risk_bytes(), 1024u);
  EXPECT_EQ(w.at_risk_requests(), 1u);
}

}  // namespace
}  // namespace minivmm::storage
