// Writes kicked together while the write cache is off share one fdatasync
// (image_disk.h). The contract (cache-modes.md) is checked at the engine
// seam for every write: the guest sees it complete only after either its own
// RWF_DSYNC write completed, or an fdatasync that was issued after the write
// completed has completed successfully.
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <unordered_set>
#include <vector>

#include "common/unique_fd.h"
#include "mode_engine_param.h"
#include "storage/aligned_buffer.h"
#include "storage/durable_write_batch.h"
#include "storage/open_disk.h"
#include "test_image.h"

namespace minivmm::storage {
namespace {

using test::ModeEngine;
using Kind = IoOp::Kind;
using Type = TracedEvent::Type;

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kImageSize = 1 << 20;

struct GuestWrite {
  uint64_t offset = 0;
  bool done = false;
  int result = 1;
  size_t log_position = 0;  // trace size when the guest saw the completion
};

// Guest writes of one 4 KiB block each, with their own data.
class WriteBatch {
 public:
  WriteBatch(size_t count, uint64_t first_offset) : buf_(count * kBlock, 4096), writes_(count) {
    for (size_t i = 0; i < count; ++i) {
      writes_[i].offset = first_offset + i * 2 * kBlock;
      std::memset(buf_.data() + i * kBlock, static_cast<int>(0x40 + i), kBlock);
    }
  }
  // Submits every write (no kick); completions note the trace's length.
  void submit(Disk& disk, const IoTrace* trace) {
    for (size_t i = 0; i < writes_.size(); ++i) {
      DiskRequest r;
      r.op = RequestType::Write;
      r.offset = writes_[i].offset;
      r.iov = {&iovs_.emplace_back(iovec{buf_.data() + i * kBlock, kBlock}), 1};
      r.done = [this, i, trace](int res) {
        writes_[i].done = true;
        writes_[i].result = res;
        writes_[i].log_position = trace ? trace->events().size() : 0;
      };
      disk.submit(std::move(r));
    }
  }
  bool all_done() const {
    for (const auto& w : writes_) {
      if (!w.done) return false;
    }
    return true;
  }
  const std::vector<GuestWrite>& writes() const { return writes_; }
  const uint8_t* data(size_t i) const { return buf_.data() + i * kBlock; }

 private:
  AlignedBuffer buf_;
  std::deque<iovec> iovs_;  // stable addresses: DiskRequest::iov is a view
  std::vector<GuestWrite> writes_;
};

void pump_until(Disk& disk, const std::function<bool()>& finished) {
  while (!finished()) {
    pollfd p{disk.completion_fd(), POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) throw std::runtime_error("completion_fd never became readable");
    disk.process_completions();
  }
}

// Why `w` is not provably durable when the guest saw it complete, or
// nullopt when it is.
std::optional<std::string> durability_violation(const IoTrace& trace, const GuestWrite& w) {
  const auto& ev = trace.events();
  std::optional<size_t> issued, completed;
  bool dsync = false;
  for (size_t i = 0; i < ev.size(); ++i) {
    if (ev[i].type == Type::Issued && ev[i].kind == Kind::Write && ev[i].offset == w.offset) {
      issued = i;
      dsync = ev[i].dsync;
    }
  }
  if (!issued) return "never issued";
  for (size_t i = *issued; i < ev.size(); ++i) {
    if (ev[i].type == Type::Completed && ev[i].tag == ev[*issued].tag) {
      completed = i;
      break;
    }
  }
  if (!completed || *completed >= w.log_position)
    return "guest saw it before the host write completed";
  if (dsync) return std::nullopt;
  // An fdatasync issued after the write completed, completed successfully
  // before the guest saw the write.
  for (size_t i = *completed + 1; i < w.log_position; ++i) {
    if (ev[i].type != Type::Issued || ev[i].kind != Kind::Fdatasync) continue;
    for (size_t j = i + 1; j < w.log_position; ++j) {
      if (ev[j].type == Type::Completed && ev[j].tag == ev[i].tag && ev[j].result == 0) {
        return std::nullopt;
      }
    }
  }
  return "plain write with no fdatasync after it before the guest saw it";
}

class DurableWriteBatching : public ::testing::TestWithParam<ModeEngine> {
 protected:
  void SetUp() override {
    SKIP_IF_NO_URING(GetParam().engine);
    path_ = dir_.file("disk.img");
    test::make_image(path_, kImageSize);
    DiskOptions o;
    o.path = path_;
    o.cache = GetParam().mode;
    disk_ = test::open_traced(o, GetParam().engine, trace_);
  }
  bool write_cache_off() const { return !traits(GetParam().mode).write_cache; }

  test::TempDir dir_;
  std::string path_;
  std::shared_ptr<IoTrace> trace_ = std::make_shared<IoTrace>();
  std::unique_ptr<Disk> disk_;
};

TEST_P(DurableWriteBatching, OneKickOfWritesSharesOneFdatasyncOnlyWhenTheCacheIsOff) {
  WriteBatch batch(32, 0);
  batch.submit(*disk_, trace_.get());
  disk_->kick();
  pump_until(*disk_, [&] { return batch.all_done(); });

  for (const GuestWrite& w : batch.writes()) ASSERT_EQ(w.result, 0) << "offset " << w.offset;
  const DiskStats s = disk_->stats();
  EXPECT_EQ(s.writes, 32u);
  EXPECT_EQ(s.dsync_writes, 0u);
  EXPECT_EQ(trace_->issued(Kind::Write, true), 0u);
  if (write_cache_off()) {
    EXPECT_EQ(trace_->issued(Kind::Fdatasync), 1u) << "one fdatasync for the whole batch";
    EXPECT_EQ(s.fdatasyncs, 1u);
    EXPECT_EQ(s.batched_durable_writes, 32u);
    EXPECT_EQ(s.durable_writes(), s.writes);
    for (const GuestWrite& w : batch.writes()) {
      const auto why = durability_violation(*trace_, w);
      EXPECT_FALSE(why) << "offset " << w.offset << ": " << *why;
    }
  } else {
    // Write cache on: nothing extra (flushes are the guest's business).
    EXPECT_EQ(trace_->issued(Kind::Fdatasync), 0u);
    EXPECT_EQ(s.batched_durable_writes, 0u);
  }
  const auto on_disk = test::read_file(path_, 0, 64 * kBlock);
  for (size_t i = 0; i < batch.writes().size(); ++i) {
    EXPECT_EQ(std::memcmp(on_disk.data() + batch.writes()[i].offset, batch.data(i), kBlock), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(AllModes, DurableWriteBatching,
                         ::testing::ValuesIn(test::all_modes_both_engines()),
                         test::mode_engine_name);

std::vector<ModeEngine> modes_where(bool write_cache) {
  std::vector<ModeEngine> out;
  for (const ModeEngine& m : test::all_modes_both_engines()) {
    if (traits(m.mode).write_cache == write_cache && traits(m.mode).flush_honoured) {
      out.push_back(m);
    }
  }
  return out;
}

// writethrough, directsync.
class CacheOffBatching : public DurableWriteBatching {};

TEST_P(CacheOffBatching, WritesArrivingWhileASyncIsInFlightGetTheirOwn) {
  WriteBatch first(4, 0), second(4, kImageSize / 2);
  first.submit(*disk_, trace_.get());
  disk_->kick();
  // Let the first batch's writes complete and its sync go out.
  pollfd p{disk_->completion_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  disk_->process_completions();
  second.submit(*disk_, trace_.get());
  disk_->kick();
  pump_until(*disk_, [&] { return first.all_done() && second.all_done(); });

  for (const WriteBatch* b : {&first, &second}) {
    for (const GuestWrite& w : b->writes()) {
      ASSERT_EQ(w.result, 0);
      const auto why = durability_violation(*trace_, w);
      EXPECT_FALSE(why) << "offset " << w.offset << ": " << *why;
    }
  }
  EXPECT_EQ(disk_->stats().durable_writes(), 8u);
}

INSTANTIATE_TEST_SUITE_P(CacheOffModes, CacheOffBatching, ::testing::ValuesIn(modes_where(false)),
                         test::mode_engine_name);

// writeback, none: the guest switches the cache off (CONFIG_WCE).
class GuestCacheOffBatching : public DurableWriteBatching {};

TEST_P(GuestCacheOffBatching, GuestTurningTheCacheOffGetsBatchedDurability) {
  disk_->set_write_cache(false);
  WriteBatch batch(8, 0);
  batch.submit(*disk_, trace_.get());
  disk_->kick();
  pump_until(*disk_, [&] { return batch.all_done(); });
  for (const GuestWrite& w : batch.writes()) {
    ASSERT_EQ(w.result, 0);
    const auto why = durability_violation(*trace_, w);
    EXPECT_FALSE(why) << "offset " << w.offset << ": " << *why;
  }
  EXPECT_EQ(disk_->stats().durable_writes(), 8u);
  EXPECT_EQ(trace_->issued(Kind::Fdatasync), 1u);
}

INSTANTIATE_TEST_SUITE_P(CacheOnModes, GuestCacheOffBatching,
                         ::testing::ValuesIn(modes_where(true)), test::mode_engine_name);

// An engine whose fdatasyncs fail with EIO (everything else goes through).
class FailingSyncEngine final : public IoEngine {
 public:
  explicit FailingSyncEngine(std::unique_ptr<IoEngine> inner) : inner_(std::move(inner)) {}
  std::string_view name() const override { return "failing-sync"; }
  void prepare(IoOp& op) override {
    if (op.kind != Kind::Fdatasync) return inner_->prepare(op);
    failed_.insert(op.tag);
    // A no-op in its place completes through the inner engine's eventfd
    // (kept: the engine holds it until reaped).
    IoOp& noop = noops_.emplace_back();
    noop.tag = op.tag;
    inner_->prepare(noop);
  }
  void kick() override { inner_->kick(); }
  int completion_fd() const override { return inner_->completion_fd(); }
  void reap(std::vector<IoCompletion>& out) override {
    const size_t first = out.size();
    inner_->reap(out);
    for (size_t i = first; i < out.size(); ++i) {
      if (failed_.erase(out[i].tag)) out[i].result = -EIO;
    }
  }
  void wait() override { inner_->wait(); }

 private:
  std::deque<IoOp> noops_;  // stable addresses
  std::unique_ptr<IoEngine> inner_;
  std::unordered_set<uint64_t> failed_;
};

TEST(DurableWriteBatchingFailure, AFailedBatchSyncFailsEveryWriteItCovered) {
  test::TempDir dir;
  const std::string path = dir.file("disk.img");
  test::make_image(path, kImageSize);
  DiskOptions o;
  o.path = path;
  o.cache = CacheMode::Writethrough;
  auto disk = open_disk_with_engine(o, std::make_unique<FailingSyncEngine>(make_sync_engine()));
  WriteBatch batch(4, 0);
  batch.submit(*disk, nullptr);
  disk->kick();
  pump_until(*disk, [&] { return batch.all_done(); });
  for (const GuestWrite& w : batch.writes()) EXPECT_EQ(w.result, -EIO) << "offset " << w.offset;
  const DiskStats s = disk->stats();
  EXPECT_EQ(s.writes, 4u);  // the host writes themselves succeeded
  EXPECT_EQ(s.batched_durable_writes, 0u);
  EXPECT_EQ(s.fdatasyncs, 0u);
}

// Kernel-side proof (cachestat(2), Linux 6.5): a completed batch leaves no
// dirty page cache behind in writethrough.

class BatchPageCache : public ::testing::TestWithParam<IoEngineKind> {};

TEST_P(BatchPageCache, WritethroughBatchLeavesNoDirtyPagesWhenItCompletes) {
  SKIP_IF_NO_URING(GetParam());
  test::TempDir dir;
  const std::string path = dir.file("disk.img");
  test::make_image(path, kImageSize);
  UniqueFd probe(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(probe.valid());
  ASSERT_EQ(::fdatasync(probe.get()), 0);
  if (!test::dirty_or_writeback_pages(probe.get())) GTEST_SKIP() << "cachestat(2) not available";
  DiskOptions o;
  o.path = path;
  o.engine = GetParam();
  for (CacheMode mode : {CacheMode::Writethrough, CacheMode::Writeback}) {
    o.cache = mode;
    auto disk = Disk::open(o);
    WriteBatch batch(16, mode == CacheMode::Writethrough ? 0 : kImageSize / 2);
    batch.submit(*disk, nullptr);
    disk->kick();
    pump_until(*disk, [&] { return batch.all_done(); });
    if (mode == CacheMode::Writethrough) {
      EXPECT_EQ(*test::dirty_or_writeback_pages(probe.get()), 0u)
          << "batch completed before its sync";
    } else {
      EXPECT_GT(*test::dirty_or_writeback_pages(probe.get()), 0u)
          << "control: the probe must see dirt";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BothEngines, BatchPageCache,
                         ::testing::Values(IoEngineKind::IoUring, IoEngineKind::Sync),
                         [](const auto& test_param) {
                           return test_param.param == IoEngineKind::IoUring ? "uring" : "sync";
                         });

TEST(DurableWriteBatchRoutes, ALoneWriteGoesDsyncAndAnythingSharingTheHostJoinsABatch) {
  DurableWriteBatch b;
  std::vector<uint64_t> out;
  b.stage(1);
  EXPECT_FALSE(b.take_staged(out));  // alone, nothing durable in flight: RWF_DSYNC
  EXPECT_EQ(out, std::vector<uint64_t>{1});
  b.issued(false);
  b.stage(2);
  EXPECT_TRUE(b.take_staged(out));  // joins a durable write in the host
  b.issued(true);
  b.host_completed(false);
  b.stage(3);
  b.stage(4);
  EXPECT_TRUE(b.take_staged(out));  // two kicked together
  EXPECT_EQ(out, (std::vector<uint64_t>{3, 4}));
}

TEST(DurableWriteBatchRoutes, TheSyncWaitsForEveryBatchWriteInTheHostAndCoversThoseDone) {
  DurableWriteBatch b;
  std::vector<uint64_t> out;
  b.stage(1);
  b.stage(2);
  ASSERT_TRUE(b.take_staged(out));
  b.issued(true);
  b.issued(true);
  b.host_completed(true);
  b.await_sync(1);
  EXPECT_TRUE(b.sync_wanted());
  EXPECT_FALSE(b.sync_due());  // write 2 is still in the host
  b.host_completed(true);
  b.await_sync(2);
  EXPECT_TRUE(b.sync_due());
  b.start_sync();
  EXPECT_FALSE(b.sync_wanted());  // one sync in flight at a time
  EXPECT_EQ(b.finish_sync(), (std::vector<uint64_t>{1, 2}));
}

}  // namespace
}  // namespace minivmm::storage
