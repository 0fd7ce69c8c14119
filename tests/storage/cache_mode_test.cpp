// Names and traits of the five cache modes (contract table, cache-modes.md).
#include "storage/cache_mode.h"

#include <gtest/gtest.h>

#include <string>

namespace minivmm::storage {
namespace {

constexpr CacheMode kAll[] = {CacheMode::Writeback, CacheMode::None, CacheMode::Writethrough,
                              CacheMode::Directsync, CacheMode::Unsafe};

TEST(CacheModeNames, ParseRoundTripsEveryMode) {
  for (CacheMode m : kAll) {
    auto parsed = parse_cache_mode(to_string(m));
    ASSERT_TRUE(parsed.has_value()) << to_string(m);
    EXPECT_EQ(*parsed, m);
    EXPECT_NE(std::string(allowed_cache_modes()).find(to_string(m)), std::string::npos);
  }
}

TEST(CacheModeNames, RejectsUnknownAndMiscasedNames) {
  EXPECT_FALSE(parse_cache_mode("").has_value());
  EXPECT_FALSE(parse_cache_mode("WriteBack").has_value());
  EXPECT_FALSE(parse_cache_mode("direct").has_value());
  EXPECT_FALSE(parse_cache_mode("none ").has_value());
}

TEST(CacheModeNames, QemuSpellings) {
  EXPECT_EQ(parse_cache_mode("writeback"), CacheMode::Writeback);
  EXPECT_EQ(parse_cache_mode("none"), CacheMode::None);
  EXPECT_EQ(parse_cache_mode("writethrough"), CacheMode::Writethrough);
  EXPECT_EQ(parse_cache_mode("directsync"), CacheMode::Directsync);
  EXPECT_EQ(parse_cache_mode("unsafe"), CacheMode::Unsafe);
}

}  // namespace
}  // namespace minivmm::storage
