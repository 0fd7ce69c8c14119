#include "vmm/host/thread_stacks.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <thread>

namespace minivmm {
namespace {

size_t stack_size_of_a_new_thread() {
  size_t size = 0;
  std::thread([&] {
    pthread_attr_t attr;
    ASSERT_EQ(pthread_getattr_np(pthread_self(), &attr), 0);
    ASSERT_EQ(pthread_attr_getstacksize(&attr, &size), 0);
    pthread_attr_destroy(&attr);
  }).join();
  return size;
}

// Restores the process default so later tests in this binary are unaffected.
class ThreadStacks : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(pthread_getattr_default_np(&saved_), 0); }
  void TearDown() override {
    pthread_setattr_default_np(&saved_);
    pthread_attr_destroy(&saved_);
  }
  pthread_attr_t saved_;
};

TEST_F(ThreadStacks, ThreadsStartedAfterwardsGetTheSizeAndItIsUnderOneHugePage) {
  set_default_thread_stack_size(kThreadStackBytes);
  const size_t size = stack_size_of_a_new_thread();
  EXPECT_GE(size, kThreadStackBytes);
  // Under 2 MiB, the mapping cannot hold an aligned huge page (the point).
  EXPECT_LT(size, size_t{2} << 20);
  // A thread that uses most of it still runs (the limit is real, not just
  // reported): 768 KiB of locals, touched.
  std::thread([] {
    volatile char big[768 << 10];
    for (size_t i = 0; i < sizeof(big); i += 4096) big[i] = 1;
    EXPECT_EQ(big[4096], 1);
  }).join();
}

TEST_F(ThreadStacks, ASizeBelowTheMinimumIsRefusedWithTheSize) {
  try {
    set_default_thread_stack_size(1);
    FAIL() << "a 1-byte stack was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("1 bytes"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace minivmm
