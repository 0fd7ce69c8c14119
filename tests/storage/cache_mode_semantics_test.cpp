// Each mode's durability behaviour, seen at the engine seam (TracingEngine)
// and, for the page-cache modes, in the kernel's own dirty-page accounting.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <vector>

#include "common/unique_fd.h"
#include "mode_engine_param.h"
#include "storage/aligned_buffer.h"
#include "test_image.h"

namespace minivmm::storage {
namespace {

using test::ModeEngine;
using Kind = IoOp::Kind;

constexpr uint64_t kImageSize = 1 << 20;

class CacheModeSemantics : public ::testing::TestWithParam<ModeEngine> {
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
  int write_block(uint64_t offset) { return test::run_write(*disk_, offset, buf_.data(), 4096); }

  test::TempDir dir_;
  std::string path_;
  std::shared_ptr<IoTrace> trace_ = std::make_shared<IoTrace>();
  std::unique_ptr<Disk> disk_;
  AlignedBuffer buf_{4096, 4096};
};

TEST_P(CacheModeSemantics, WriteCacheStartsFromTheModeTraits) {
  EXPECT_EQ(disk_->write_cache_enabled(), traits(GetParam().mode).write_cache);
}

TEST_P(CacheModeSemantics, WritesCarryDsyncExactlyWhenTheWriteCacheIsOff) {
  ASSERT_EQ(write_block(0), 0);
  ASSERT_EQ(write_block(8192), 0);
  const bool durable_writes =
      GetParam().mode == CacheMode::Writethrough || GetParam().mode == CacheMode::Directsync;
  EXPECT_EQ(trace_->issued(Kind::Write, true), durable_writes ? 2u : 0u);
  EXPECT_EQ(trace_->issued(Kind::Write, false), durable_writes ? 0u : 2u);
  EXPECT_EQ(trace_->issued(Kind::Fdatasync), 0u);  // no hidden sync per write
}

TEST_P(CacheModeSemantics, FlushReachesFdatasyncUnlessUnsafe) {
  ASSERT_EQ(write_block(0), 0);
  ASSERT_EQ(test::run_flush(*disk_), 0);
  if (GetParam().mode == CacheMode::Unsafe) {
    EXPECT_EQ(trace_->issued(Kind::Fdatasync), 0u);
    EXPECT_EQ(trace_->issued(Kind::Noop), 1u);
  } else {
    EXPECT_EQ(trace_->issued(Kind::Fdatasync), 1u);
  }
  EXPECT_EQ(trace_->completed(), 2u);
}

TEST_P(CacheModeSemantics, GuestWceToggleSwitchesPerWriteDurability) {
  const CacheMode mode = GetParam().mode;
  disk_->set_write_cache(!traits(mode).write_cache);
  EXPECT_EQ(disk_->write_cache_enabled(), !traits(mode).write_cache);
  ASSERT_EQ(write_block(0), 0);
  disk_->set_write_cache(traits(mode).write_cache);
  ASSERT_EQ(write_block(4096), 0);
  const auto& ev = trace_->events();
  std::vector<bool> dsync;
  for (const auto& e : ev) {
    if (e.type == TracedEvent::Type::Issued && e.kind == Kind::Write) dsync.push_back(e.dsync);
  }
  ASSERT_EQ(dsync.size(), 2u);
  if (mode == CacheMode::Unsafe) {
    // unsafe never promises durability, whatever the guest asks.
    EXPECT_EQ(dsync, (std::vector<bool>{false, false}));
  } else {
    // writeback/none with WCE off behave as writethrough/directsync, and back.
    const bool off_first = traits(mode).write_cache;
    EXPECT_EQ(dsync, (std::vector<bool>{off_first, !off_first}));
  }
}

TEST_P(CacheModeSemantics, WriteZeroesIsDurableWhenTheWriteCacheIsOff) {
  DiskRequest r;
  r.op = RequestType::WriteZeroes;
  r.offset = 4096;
  r.length = 8192;
  ASSERT_EQ(test::run_request(*disk_, std::move(r)), 0);
  EXPECT_EQ(trace_->issued(Kind::Fallocate), 1u);
  EXPECT_EQ(trace_->issued(Kind::Fdatasync), disk_->write_cache_enabled() ? 0u : 1u);
}

INSTANTIATE_TEST_SUITE_P(AllModes, CacheModeSemantics,
                         ::testing::ValuesIn(test::all_modes_both_engines()),
                         test::mode_engine_name);

// Kernel-side proof, independent of our own bookkeeping: cachestat(2)
// (Linux 6.5) reports dirty page-cache pages of a file range.

class PageCacheDurability : public ::testing::TestWithParam<IoEngineKind> {};

TEST_P(PageCacheDurability, WritethroughLeavesNoDirtyPagesWritebackDoesUntilFlush) {
  SKIP_IF_NO_URING(GetParam());
  test::TempDir dir;
  const std::string path = dir.file("disk.img");
  test::make_image(path, kImageSize);
  UniqueFd probe(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(probe.valid());
  ASSERT_EQ(::fdatasync(probe.get()), 0);  // start clean
  if (!test::dirty_or_writeback_pages(probe.get())) GTEST_SKIP() << "cachestat(2) not available";
  AlignedBuffer buf(4096, 4096);

  DiskOptions o;
  o.path = path;
  o.engine = GetParam();
  o.cache = CacheMode::Writethrough;
  {
    auto disk = Disk::open(o);
    ASSERT_EQ(test::run_write(*disk, 0, buf.data(), 4096), 0);
    EXPECT_EQ(*test::dirty_or_writeback_pages(probe.get()), 0u)
        << "RWF_DSYNC write left dirty pages";
  }
  o.cache = CacheMode::Writeback;
  auto disk = Disk::open(o);
  ASSERT_EQ(test::run_write(*disk, 8192, buf.data(), 4096), 0);
  EXPECT_GT(*test::dirty_or_writeback_pages(probe.get()), 0u) << "control: the probe must see dirt";
  ASSERT_EQ(test::run_flush(*disk), 0);
  EXPECT_EQ(*test::dirty_or_writeback_pages(probe.get()), 0u) << "flush did not reach the disk";
}

INSTANTIATE_TEST_SUITE_P(BothEngines, PageCacheDurability,
                         ::testing::Values(IoEngineKind::IoUring, IoEngineKind::Sync),
                         [](const auto& test_param) {
                           return test_param.param == IoEngineKind::IoUring ? "uring" : "sync";
                         });

}  // namespace
}  // namespace minivmm::storage
