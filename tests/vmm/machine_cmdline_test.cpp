#include <gtest/gtest.h>

#include "vmm/machine.h"

namespace minivmm {
namespace {

TEST(KernelCmdline, PvmFlagsAddedOnlyOnPvm) {
  EXPECT_EQ(build_kernel_cmdline("console=ttyS0", false, {}), "console=ttyS0");
  const std::string pvm = build_kernel_cmdline("console=ttyS0", true, {});
  EXPECT_NE(pvm.find(" noxsave"), std::string::npos);
  EXPECT_NE(pvm.find("clearcpuid=smap,popcnt,fsgsbase,rdpid,pku,umip"), std::string::npos);
}

TEST(KernelCmdline, UserFlagsAreNotDuplicated) {
  const std::string c = build_kernel_cmdline("console=ttyS0 clearcpuid=smap noxsave", true, {});
  EXPECT_EQ(c, "console=ttyS0 clearcpuid=smap noxsave");
}

TEST(KernelCmdline, OneVirtioMmioEntryPerDevice) {
  const std::string c =
      build_kernel_cmdline("console=ttyS0", false, {"4K@0xd0000000:5", "4K@0xd0001000:6"});
  EXPECT_EQ(c,
            "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6");
}

}  // namespace
}  // namespace minivmm
