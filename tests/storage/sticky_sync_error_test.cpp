// The first failed sync sticks; later results never clear or replace it.
#include "storage/sticky_sync_error.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace minivmm::storage {
namespace {

TEST(StickySyncError, FirstFailureSticksAndIsReportedOnce) {
  StickySyncError sticky;
  EXPECT_FALSE(sticky.note(0));
  EXPECT_EQ(sticky.error(), 0);
  EXPECT_TRUE(sticky.note(-EIO));
  EXPECT_FALSE(sticky.note(-ENOSPC));  // not a second report, not a replacement
  EXPECT_FALSE(sticky.note(0));        // a later success does not clear it
  EXPECT_EQ(sticky.error(), -EIO);
}

}  // namespace
}  // namespace minivmm::storage
