// The io_uring engine's ring takes only the operations the engine issues:
// an SQE that would open a file (or anything else the seccomp sandbox
// forbids the I/O loop) is refused by the kernel, while disk I/O works.
#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "storage/aligned_buffer.h"
#include "storage/uring_engine.h"
#include "test_image.h"

namespace minivmm::storage {
namespace {

class UringRestrictions : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::uring_available()) GTEST_SKIP() << "io_uring cannot be set up on this host";
    path_ = dir_.file("r.img");
    test::make_image(path_, 1 << 20);
    fd_.reset(::open(path_.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(fd_.valid());
    engine_ = std::make_unique<UringEngine>(kDefaultQueueDepth);
  }
  // Submits one raw SQE through the engine's ring; returns its CQE's res.
  template <typename Prep>
  int submit_raw(Prep prep) {
    io_uring& ring = engine_->ring_for_tests();
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (!sqe) throw std::runtime_error("no free SQE");
    prep(sqe);
    io_uring_sqe_set_data64(sqe, 4242);
    const int submitted = io_uring_submit(&ring);
    if (submitted != 1) throw std::runtime_error("io_uring_submit: " + std::to_string(submitted));
    io_uring_cqe* cqe = nullptr;
    const int ret = io_uring_wait_cqe(&ring, &cqe);
    if (ret < 0) throw std::runtime_error("io_uring_wait_cqe: " + std::to_string(ret));
    const int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    return res;
  }

  test::TempDir dir_;
  std::string path_;
  UniqueFd fd_;
  std::unique_ptr<UringEngine> engine_;
};

TEST_F(UringRestrictions, OpenatThroughTheEnginesRingIsRefused) {
  const int res = submit_raw([this](io_uring_sqe* sqe) {
    io_uring_prep_openat(sqe, AT_FDCWD, path_.c_str(), O_RDONLY | O_CLOEXEC, 0);
  });
  const UniqueFd opened(res >= 0 ? res : -1);  // closed, should the kernel have opened it
  EXPECT_EQ(res, -EACCES);
}

TEST_F(UringRestrictions, ConnectThroughTheEnginesRingIsRefused) {
  // Refused for its opcode, before the kernel looks at the fd or address.
  const int res = submit_raw([](io_uring_sqe* sqe) { io_uring_prep_connect(sqe, 0, nullptr, 0); });
  EXPECT_EQ(res, -EACCES);
}

TEST_F(UringRestrictions, SqeFlagsTheEngineNeverSetsAreRefused) {
  EXPECT_EQ(submit_raw([](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); }), 0);
  EXPECT_EQ(submit_raw([](io_uring_sqe* sqe) {
              io_uring_prep_nop(sqe);
              io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
            }),
            -EACCES);
}

TEST_F(UringRestrictions, RegisteringFilesOnTheEnabledRingIsRefused) {
  const int fd = fd_.get();
  EXPECT_EQ(io_uring_register_files(&engine_->ring_for_tests(), &fd, 1), -EACCES);
}

// Every kind of operation the disk layer issues still goes through.
TEST_F(UringRestrictions, EveryOperationTheEngineIssuesStillWorks) {
  AlignedBuffer out(8192, 4096);
  AlignedBuffer in(8192, 4096);
  for (size_t i = 0; i < out.size(); ++i) out.data()[i] = static_cast<uint8_t>(i * 3 + 1);
  const iovec w{out.data(), out.size()};
  const iovec r{in.data(), in.size()};
  const int fd = fd_.get();
  // The engine holds each op until it is reaped.
  IoOp write{IoOp::Kind::Write, fd, 8192, {&w, 1}, 0, 0, true, 1, false, {}};  // RWF_DSYNC
  IoOp sync{IoOp::Kind::Fdatasync, fd, 0, {}, 0, 0, false, 2, false, {}};
  IoOp fallocate{IoOp::Kind::Fallocate, fd,    65536, {},    4096,
                 FALLOC_FL_KEEP_SIZE,   false, 3,     false, {}};
  IoOp noop{IoOp::Kind::Noop, fd, 0, {}, 0, 0, false, 4, false, {}};
  engine_->prepare(write);
  engine_->prepare(sync);
  engine_->prepare(fallocate);
  engine_->prepare(noop);
  engine_->kick();
  std::vector<IoCompletion> done;
  while (done.size() < 4) {
    engine_->wait();
    engine_->reap(done);
  }
  IoOp read{IoOp::Kind::Read, fd, 8192, {&r, 1}, 0, 0, false, 5, false, {}};
  engine_->prepare(read);
  engine_->kick();
  while (done.size() < 5) {
    engine_->wait();
    engine_->reap(done);
  }
  for (const IoCompletion& c : done) {
    const int64_t expected = c.tag == 1 || c.tag == 5 ? 8192 : 0;
    EXPECT_EQ(c.result, expected) << "tag " << c.tag;
  }
  EXPECT_EQ(0, std::memcmp(in.data(), out.data(), in.size()));
}

}  // namespace
}  // namespace minivmm::storage
