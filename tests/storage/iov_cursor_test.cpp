// Resuming vectored transfers after short reads/writes, and bounce copies.
#include "storage/iov_cursor.h"

#include <gtest/gtest.h>

#include <numeric>

namespace minivmm::storage {
namespace {

TEST(IovCursor, AdvanceAcrossAndInsideSegments) {
  uint8_t a[10], b[20], c[30];
  const iovec iov[] = {{a, 10}, {b, 0}, {b, 20}, {c, 30}};
  IovCursor cur(iov, 1000);
  EXPECT_EQ(cur.count(), 4);  // the caller's list as it is
  EXPECT_EQ(cur.remaining(), 60u);
  cur.advance(4);
  EXPECT_EQ(cur.remaining(), 56u);
  EXPECT_EQ(cur.offset(), 1004u);
  EXPECT_EQ(cur.data()[0].iov_base, a + 4);
  EXPECT_EQ(cur.data()[0].iov_len, 6u);
  cur.advance(6 + 5);
  EXPECT_EQ(cur.count(), 2);
  EXPECT_EQ(cur.data()[0].iov_base, b + 5);
  EXPECT_EQ(cur.data()[0].iov_len, 15u);
  EXPECT_FALSE(cur.done());
  cur.advance(15 + 30);
  EXPECT_TRUE(cur.done());
  EXPECT_EQ(cur.remaining(), 0u);
  EXPECT_EQ(cur.transferred(), 60u);
  EXPECT_EQ(cur.offset(), 1060u);
}

TEST(IovCursor, WalksTheCallersListWithoutACopyUntilATransferEndsInsideASegment) {
  uint8_t a[10], b[20], c[30];
  const iovec iov[] = {{a, 10}, {b, 20}, {c, 30}};
  IovCursor cur(iov, 0);
  EXPECT_EQ(cur.data(), iov);  // no second iovec list
  cur.advance(10);             // a segment boundary
  EXPECT_FALSE(cur.copied());
  EXPECT_EQ(cur.data(), iov + 1);
  cur.advance(25);  // ends 5 bytes into c
  EXPECT_TRUE(cur.copied());
  EXPECT_EQ(cur.data()[0].iov_base, c + 5);
  EXPECT_EQ(cur.data()[0].iov_len, 25u);
  EXPECT_EQ(iov[2].iov_len, 30u);  // the caller's list is never written
  cur.advance(25);
  EXPECT_TRUE(cur.done());
}

TEST(IovCursor, ResetReusesTheCursorForANewList) {
  uint8_t a[8], b[16];
  const iovec first[] = {{a, 8}, {b, 16}};
  IovCursor cur(first, 0);
  cur.advance(10);
  const iovec second[] = {{b, 16}};
  cur.reset(second, 4096);
  EXPECT_EQ(cur.count(), 1);
  EXPECT_EQ(cur.remaining(), 16u);
  EXPECT_EQ(cur.transferred(), 0u);
  EXPECT_EQ(cur.offset(), 4096u);
  EXPECT_EQ(cur.data()[0].iov_base, b);
}

TEST(IovCopy, FlatBufferToAndFromSegments) {
  uint8_t a[3] = {}, b[5] = {};
  const iovec iov[] = {{a, 3}, {b, 5}};
  EXPECT_EQ(iov_total(iov), 8u);
  uint8_t src[8];
  std::iota(src, src + 8, 1);
  EXPECT_EQ(copy_to_iov(iov, src, 8), 8u);
  EXPECT_EQ(a[2], 3);
  EXPECT_EQ(b[0], 4);
  EXPECT_EQ(b[4], 8);
  uint8_t dst[8] = {};
  EXPECT_EQ(copy_from_iov(iov, dst, 6), 6u);
  EXPECT_EQ(dst[5], 6);
  EXPECT_EQ(dst[6], 0);
}

}  // namespace
}  // namespace minivmm::storage
