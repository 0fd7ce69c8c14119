#include "vmm/host/rip_profile.h"

#include <gtest/gtest.h>

namespace minivmm {
namespace {

TEST(RipProfile, AggregatesSamplesByEnclosingSymbol) {
  const std::string map =
      "ffffffff81000000 T _text\n"
      "ffffffff81001000 T delay_tsc\n"
      "ffffffff81001100 t helper\n"
      "ffffffff81002000 D some_data\n"
      "ffffffff81003000 T memset\n";
  const std::map<uint64_t, uint64_t> samples = {{0xffffffff81001004, 3},
                                                {0xffffffff810010ff, 2},  // delay_tsc
                                                {0xffffffff81001100, 1},  // helper
                                                {0xffffffff81002500,
                                                 4},  // after helper; data symbols ignored
                                                {0xffffffff81003010, 1},  // memset
                                                {0x1000, 2}};             // below every symbol
  const auto p = aggregate_rip_samples(samples, map);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0], (std::pair<std::string, uint64_t>{"delay_tsc", 5}));
  EXPECT_EQ(p[1], (std::pair<std::string, uint64_t>{"helper", 5}));
  EXPECT_EQ(p[2], (std::pair<std::string, uint64_t>{"0x1000", 2}));
  EXPECT_EQ(p[3], (std::pair<std::string, uint64_t>{"memset", 1}));
}

}  // namespace
}  // namespace minivmm
