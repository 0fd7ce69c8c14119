// Up-front request validation: bounds (overflow-safe), alignment, read-only.
#include "storage/request_checks.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>

namespace minivmm::storage {
namespace {

constexpr ImageLimits kLimits{1 << 20, 512, false};

DiskRequest rw(RequestType op, uint64_t offset, size_t len) {
  static uint8_t buf[8192];
  static iovec v;  // DiskRequest::iov is a view; each check uses one request at a time
  v = {buf, len};
  DiskRequest r;
  r.op = op;
  r.offset = offset;
  r.iov = {&v, 1};
  return r;
}

DiskRequest ranged(RequestType op, uint64_t offset, uint64_t len) {
  DiskRequest r;
  r.op = op;
  r.offset = offset;
  r.length = len;
  return r;
}

TEST(RequestChecks, InsideTheImageIsAccepted) {
  EXPECT_EQ(check_request(rw(RequestType::Read, 0, 512), kLimits), 0);
  EXPECT_EQ(check_request(rw(RequestType::Write, (1 << 20) - 4096, 4096), kLimits), 0);
  EXPECT_EQ(check_request(ranged(RequestType::Discard, 0, 1 << 20), kLimits), 0);
}

TEST(RequestChecks, AnyByteOutsideIsRejected) {
  EXPECT_EQ(check_request(rw(RequestType::Read, (1 << 20) - 512, 1024), kLimits), -EINVAL);
  EXPECT_EQ(check_request(rw(RequestType::Write, 1 << 20, 512), kLimits), -EINVAL);
  EXPECT_EQ(check_request(ranged(RequestType::WriteZeroes, 512, 1 << 20), kLimits), -EINVAL);
}

TEST(RequestChecks, OffsetPlusLengthCannotWrap) {
  const uint64_t near_max = UINT64_MAX - 511;  // 512-aligned
  EXPECT_EQ(check_request(rw(RequestType::Read, near_max, 1024), kLimits), -EINVAL);
  EXPECT_EQ(check_request(ranged(RequestType::Discard, 512, UINT64_MAX - 511), kLimits), -EINVAL);
  DiskRequest r = rw(RequestType::Write, 0, 512);
  const iovec two[] = {r.iov[0], {r.iov[0].iov_base, SIZE_MAX}};  // iovec total overflows
  r.iov = two;
  EXPECT_EQ(check_request(r, kLimits), -EINVAL);
}

TEST(RequestChecks, MisalignedOffsetOrLengthIsRejected) {
  EXPECT_EQ(check_request(rw(RequestType::Read, 100, 512), kLimits), -EINVAL);
  EXPECT_EQ(check_request(rw(RequestType::Write, 0, 700), kLimits), -EINVAL);
  const ImageLimits four_k{1 << 20, 4096, false};
  EXPECT_EQ(check_request(rw(RequestType::Read, 512, 4096), four_k), -EINVAL);
  EXPECT_EQ(check_request(rw(RequestType::Read, 4096, 4096), four_k), 0);
}

TEST(RequestChecks, ReadOnlyRefusesEveryModification) {
  const ImageLimits ro{1 << 20, 512, true};
  EXPECT_EQ(check_request(rw(RequestType::Write, 0, 512), ro), -EROFS);
  EXPECT_EQ(check_request(ranged(RequestType::Discard, 0, 512), ro), -EROFS);
  EXPECT_EQ(check_request(ranged(RequestType::WriteZeroes, 0, 512), ro), -EROFS);
  EXPECT_EQ(check_request(rw(RequestType::Read, 0, 512), ro), 0);
  EXPECT_EQ(check_request(ranged(RequestType::Flush, 0, 0), ro), 0);
}

TEST(RequestChecks, EachRefusalNamesItsRule) {
  const ImageLimits ro{1 << 20, 4096, true};
  const Refusal read_only = check_range(RequestType::Write, 0, 4096, ro);
  EXPECT_EQ(read_only.error, -EROFS);
  EXPECT_EQ(read_only.why, "modifies a read-only disk");
  const Refusal misaligned = check_range(RequestType::Read, 512, 4096, ro);
  EXPECT_EQ(misaligned.error, -EINVAL);
  EXPECT_EQ(misaligned.why, "not aligned to the logical block size");
  const Refusal beyond = check_range(RequestType::Read, 1 << 20, 4096, ro);
  EXPECT_EQ(beyond.error, -EINVAL);
  EXPECT_EQ(beyond.why, "beyond the end of the disk");
  EXPECT_FALSE(check_range(RequestType::Read, (1 << 20) - 4096, 4096, ro));
}

}  // namespace
}  // namespace minivmm::storage
