// The engines on their own: eventfd signalling, queue overflow, EOF handling,
// and the tracing decorator's ordered log.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/unique_fd.h"
#include "mode_engine_param.h"
#include "storage/aligned_buffer.h"
#include "storage/io_engine.h"
#include "storage/uring_engine.h"
#include "test_image.h"
#include "tests/storage/tracing_engine.h"

namespace minivmm::storage {
namespace {

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

std::vector<IoCompletion> collect(IoEngine& engine, size_t n) {
  std::vector<IoCompletion> out;
  while (out.size() < n) {
    engine.wait();
    engine.reap(out);
  }
  return out;
}

class Engine : public ::testing::TestWithParam<IoEngineKind> {
 protected:
  void SetUp() override {
    SKIP_IF_NO_URING(GetParam());
    path_ = dir_.file("e.img");
    test::make_image(path_, 1 << 20);
    fd_.reset(::open(path_.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(fd_.valid());
  }
  std::unique_ptr<IoEngine> make(unsigned depth = kDefaultQueueDepth) {
    return GetParam() == IoEngineKind::IoUring ? make_uring_engine(depth) : make_sync_engine();
  }
  test::TempDir dir_;
  std::string path_;
  UniqueFd fd_;
};

TEST_P(Engine, CompletionsArriveOnlyAfterKickAndSignalTheEventfd) {
  auto engine = make();
  AlignedBuffer buf(4096, 4096);
  const iovec iov{buf.data(), 4096};
  IoOp op{IoOp::Kind::Read, fd_.get(), 4096, {&iov, 1}, 0, 0, false, 77, false, {}};
  engine->prepare(op);
  EXPECT_FALSE(readable(engine->completion_fd(), 50));  // nothing before kick()
  engine->kick();
  ASSERT_TRUE(readable(engine->completion_fd(), 5000));
  const auto done = collect(*engine, 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].tag, 77u);
  EXPECT_EQ(done[0].result, 4096);
  EXPECT_EQ(buf.data()[0], test::pattern_byte(4096));
  EXPECT_FALSE(readable(engine->completion_fd(), 0));  // reaped: counter cleared
}

TEST_P(Engine, OverflowBeyondQueueDepthIsQueuedNotLost) {
  auto engine = make(4);
  AlignedBuffer buf(64UL * 512, 4096);
  std::vector<iovec> iov(64);
  std::vector<IoOp> ops(64);  // the engine holds each until reaped
  for (uint64_t i = 0; i < 64; ++i) {
    iov[i] = {buf.data() + i * 512, 512};
    ops[i] = {IoOp::Kind::Read, fd_.get(), i * 1024, {&iov[i], 1}, 0, 0, false, i, false, {}};
    engine->prepare(ops[i]);
  }
  engine->kick();
  const auto done = collect(*engine, 64);
  std::vector<bool> seen(64, false);
  for (const auto& c : done) {
    ASSERT_LT(c.tag, 64u);
    EXPECT_FALSE(seen[c.tag]);
    seen[c.tag] = true;
    EXPECT_EQ(c.result, 512);
    EXPECT_EQ(buf.data()[c.tag * 512], test::pattern_byte(c.tag * 1024));
  }
}

TEST_P(Engine, ReadRunningIntoEofIsAnErrorNotAShortSuccess) {
  auto engine = make();
  AlignedBuffer buf(8192, 4096);
  const iovec iov{buf.data(), 8192};
  // The first 4096 bytes come back short; the resubmitted rest reads 0 bytes.
  IoOp op{IoOp::Kind::Read, fd_.get(), (1 << 20) - 4096, {&iov, 1}, 0, 0, false, 1, false, {}};
  engine->prepare(op);
  engine->kick();
  const auto done = collect(*engine, 1);
  EXPECT_EQ(done[0].result, -EIO);
}

TEST_P(Engine, SyscallErrorsComeBackAsNegativeErrno) {
  auto engine = make();
  UniqueFd ro(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  AlignedBuffer buf(4096, 4096);
  const iovec iov{buf.data(), 4096};
  IoOp op{IoOp::Kind::Write, ro.get(), 0, {&iov, 1}, 0, 0, false, 5, false, {}};
  engine->prepare(op);
  engine->kick();
  EXPECT_EQ(collect(*engine, 1)[0].result, -EBADF);
}

TEST_P(Engine, TracingLogsIssueAndCompletionInOrderWithWriteData) {
  auto trace = std::make_shared<IoTrace>(/*keep_write_data=*/true);
  TracingEngine engine(make(), trace);
  AlignedBuffer buf(4096, 4096);
  std::memset(buf.data(), 0xab, 4096);
  const iovec iov{buf.data(), 4096};
  IoOp write{IoOp::Kind::Write, fd_.get(), 8192, {&iov, 1}, 0, 0, true, 1, false, {}};
  engine.prepare(write);
  engine.kick();
  collect(engine, 1);
  IoOp sync{IoOp::Kind::Fdatasync, fd_.get(), 0, {}, 0, 0, false, 2, false, {}};
  engine.prepare(sync);
  engine.kick();
  collect(engine, 1);
  const auto& ev = trace->events();
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].type, TracedEvent::Type::Issued);
  EXPECT_EQ(ev[0].kind, IoOp::Kind::Write);
  EXPECT_TRUE(ev[0].dsync);
  EXPECT_EQ(ev[0].offset, 8192u);
  ASSERT_EQ(ev[0].data.size(), 4096u);
  EXPECT_EQ(ev[0].data[100], 0xab);
  EXPECT_EQ(ev[1].type, TracedEvent::Type::Completed);
  EXPECT_EQ(ev[1].result, 4096);
  EXPECT_EQ(ev[2].kind, IoOp::Kind::Fdatasync);
  EXPECT_EQ(ev[3].tag, 2u);
  EXPECT_EQ(ev[3].result, 0);
  EXPECT_EQ(test::read_file(path_, 8192, 1)[0], 0xab);
}

// The page-cache fast path (UringEngine::try_inline): buffered transfers,
// many segments, and ones past the end of file still complete through the
// eventfd and reap(), with the data where it belongs.
TEST_P(Engine, BufferedTransfersCompleteThroughReapWithTheRightData) {
  auto engine = make();
  std::vector<uint8_t> src(6UL * 512), dst(6UL * 512, 0);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 13 + 1);
  std::vector<iovec> w(6), r(6);  // more segments than IovCursor keeps inline
  for (size_t i = 0; i < 6; ++i) {
    w[i] = {src.data() + i * 512, 512};
    r[i] = {dst.data() + i * 512, 512};
  }
  IoOp write{IoOp::Kind::Write, fd_.get(), 8192, w, 0, 0, false, 1, true, {}};
  engine->prepare(write);
  engine->kick();
  ASSERT_TRUE(readable(engine->completion_fd(), 5000));
  auto done = collect(*engine, 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].tag, 1u);
  EXPECT_EQ(done[0].result, 3072);
  IoOp read{IoOp::Kind::Read, fd_.get(), 8192, r, 0, 0, false, 2, true, {}};
  engine->prepare(read);
  engine->kick();
  done = collect(*engine, 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].result, 3072);
  EXPECT_EQ(dst, src);
  EXPECT_EQ(test::read_file(path_, 8192, 3072), src);
  // Past the end of the file: the inline attempt reads 0 bytes and the
  // ring's path reports it as an error, as for an unbuffered read.
  IoOp eof{IoOp::Kind::Read, fd_.get(), 1 << 20, r, 0, 0, false, 3, true, {}};
  engine->prepare(eof);
  engine->kick();
  done = collect(*engine, 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_LT(done[0].result, 0);
}

// kMaxSubmitBatch: seven O_DIRECT-like (unbuffered) reads go in with four
// io_uring_enter calls (2+2+2+1), never as one plugged batch, and all
// complete with their data.
TEST(UringEngineBatches, SubmitsAtMostTwoSqesPerEnter) {
  SKIP_IF_NO_URING(IoEngineKind::IoUring);
  test::TempDir dir;
  const std::string path = dir.file("b.img");
  test::make_image(path, 1 << 20);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  UringEngine engine(kDefaultQueueDepth);
  static_assert(UringEngine::kMaxSubmitBatch == 2);
  AlignedBuffer buf(7UL * 4096, 4096);
  std::vector<iovec> iov(7);
  std::vector<IoOp> ops(7);  // the engine holds each until reaped
  for (uint64_t i = 0; i < 7; ++i) {
    iov[i] = {buf.data() + i * 4096, 4096};
    ops[i] = {IoOp::Kind::Read, fd.get(), i * 8192, {&iov[i], 1}, 0, 0, false, i, false, {}};
    engine.prepare(ops[i]);
  }
  engine.kick();
  EXPECT_EQ(engine.submit_calls(), 4u);
  const auto done = collect(engine, 7);
  ASSERT_EQ(done.size(), 7u);
  for (const auto& c : done) {
    EXPECT_EQ(c.result, 4096);
    EXPECT_EQ(buf.data()[c.tag * 4096], test::pattern_byte(c.tag * 8192));
  }
}

INSTANTIATE_TEST_SUITE_P(Both, Engine, ::testing::Values(IoEngineKind::IoUring, IoEngineKind::Sync),
                         [](const auto& test_param) {
                           return test_param.param == IoEngineKind::IoUring ? "uring" : "sync";
                         });

}  // namespace
}  // namespace minivmm::storage
