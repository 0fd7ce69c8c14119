#include "vmm/kvm/exit_history.h"

#include <gtest/gtest.h>

namespace minivmm {
namespace {

kvm_run io_exit(uint16_t port, bool out) {
  kvm_run run{};
  run.exit_reason = KVM_EXIT_IO;
  run.io.port = port;
  run.io.direction = out ? KVM_EXIT_IO_OUT : KVM_EXIT_IO_IN;
  return run;
}

TEST(ExitHistory, EmptyHistorySaysSo) { EXPECT_EQ(ExitHistory{}.describe(), "0 exits"); }

TEST(ExitHistory, NamesIoAndMmioExitsOldestFirst) {
  ExitHistory h;
  h.record(io_exit(0x3f8, true));
  kvm_run mmio{};
  mmio.exit_reason = KVM_EXIT_MMIO;
  mmio.mmio.phys_addr = 0xd0000050;
  mmio.mmio.is_write = 0;
  h.record(mmio);
  kvm_run hlt{};
  hlt.exit_reason = KVM_EXIT_HLT;
  h.record(hlt);
  EXPECT_EQ(h.describe(),
            "3 exits; last (oldest first): KVM_EXIT_IO out 0x3f8, KVM_EXIT_MMIO read 0xd0000050, "
            "KVM_EXIT_HLT");
}

TEST(ExitHistory, KeepsOnlyTheLastSixteen) {
  ExitHistory h;
  for (uint16_t port = 1; port <= 40; ++port) h.record(io_exit(port, false));
  const std::string d = h.describe();
  EXPECT_EQ(h.count(), 40u);
  EXPECT_NE(d.find("40 exits"), std::string::npos);
  EXPECT_NE(d.find("in 0x19,"), std::string::npos);  // port 25: the oldest kept
  EXPECT_EQ(d.find("in 0x18,"), std::string::npos);  // port 24: dropped
  EXPECT_NE(d.find("in 0x28"), std::string::npos);   // port 40: the newest
}

}  // namespace
}  // namespace minivmm
