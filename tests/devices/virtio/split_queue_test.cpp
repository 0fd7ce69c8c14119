#include "devices/virtio/split_queue.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "devices/virtio/virtio_constants.h"

namespace minivmm::virtio {
namespace {

constexpr uint64_t kBase = 0x10000;
constexpr uint16_t kSize = 4;

class SplitQueueTest : public ::testing::Test {
 protected:
  std::vector<uint8_t> ram = std::vector<uint8_t>(0x4000, 0);
  GuestMemory mem{ram.data(), {.base = kBase, .size = ram.size()}};
  QueueLayout layout{kSize, kBase, kBase + 0x100, kBase + 0x200};

  uint8_t* at(uint64_t gpa) { return ram.data() + (gpa - kBase); }
  void put16(uint64_t gpa, uint16_t v) { std::memcpy(at(gpa), &v, 2); }
  uint16_t get16(uint64_t gpa) {
    uint16_t v;
    std::memcpy(&v, at(gpa), 2);
    return v;
  }
  // One single-descriptor chain per head, made available in order.
  void make_available(std::initializer_list<uint16_t> heads) {
    uint16_t idx = get16(layout.driver + 2);
    for (uint16_t h : heads) {
      uint8_t* d = at(layout.desc + 16ull * h);
      const uint64_t addr = kBase + 0x1000;
      const uint32_t len = 8;
      std::memcpy(d, &addr, 8);
      std::memcpy(d + 8, &len, 4);
      put16(layout.driver + 4 + 2ull * (idx % kSize), h);
      ++idx;
    }
    put16(layout.driver + 2, idx);
  }
  uint16_t used_event_slot() const { return 0; }
  void set_used_event(uint16_t v) { put16(layout.driver + 4 + 2ull * kSize, v); }
  uint16_t avail_event() { return get16(layout.device + 4 + 8ull * kSize); }
};

TEST_F(SplitQueueTest, PopsInOrderAndPushesUsed) {
  SplitQueue q(mem, layout, false, false);
  ASSERT_TRUE(q.ready());
  make_available({2, 0});
  auto a = q.pop();
  auto b = q.pop();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->head, 2);
  EXPECT_EQ(b->head, 0);
  EXPECT_FALSE(q.pop());
  EXPECT_FALSE(q.broken());
  q.push_used(0, 513);
  EXPECT_EQ(get16(layout.device + 2), 1);
  uint32_t id, len;
  std::memcpy(&id, at(layout.device + 4), 4);
  std::memcpy(&len, at(layout.device + 8), 4);
  EXPECT_EQ(id, 0u);
  EXPECT_EQ(len, 513u);
}

TEST_F(SplitQueueTest, ReportsRingIndicesAndWhereTheDriversAvailIdxLives) {
  EXPECT_EQ(SplitQueue().avail_idx_word(), nullptr);  // a queue not set up
  SplitQueue q(mem, layout, false, false);
  EXPECT_EQ(q.avail_idx_word(), reinterpret_cast<uint16_t*>(at(layout.driver + 2)));
  make_available({1, 3});
  EXPECT_EQ(*q.avail_idx_word(), 2);
  EXPECT_EQ(q.last_avail(), 0);  // published, not taken
  ASSERT_TRUE(q.pop());
  EXPECT_EQ(q.last_avail(), 1);
  EXPECT_EQ(q.used_idx(), 0);
  q.push_used(1, 0);
  EXPECT_EQ(q.used_idx(), 1);
}

TEST_F(SplitQueueTest, InterruptUnlessDriverSetsNoInterrupt) {
  SplitQueue q(mem, layout, false, false);
  EXPECT_FALSE(q.needs_interrupt());  // nothing used yet
  q.push_used(0, 1);
  EXPECT_TRUE(q.needs_interrupt());
  EXPECT_FALSE(q.needs_interrupt());  // nothing new since
  put16(layout.driver, kAvailFlagNoInterrupt);
  q.push_used(1, 1);
  EXPECT_FALSE(q.needs_interrupt());
}

TEST_F(SplitQueueTest, EventIdxInterruptsOnlyWhenUsedEventIsCrossed) {
  SplitQueue q(mem, layout, false, true);
  set_used_event(1);  // driver wants an interrupt once used idx passes 1
  q.push_used(0, 1);  // used idx 0 -> 1: event 1 not crossed
  EXPECT_FALSE(q.needs_interrupt());
  q.push_used(1, 1);  // 1 -> 2 crosses it
  EXPECT_TRUE(q.needs_interrupt());
  q.push_used(2, 1);  // 2 -> 3: event still 1, already passed
  EXPECT_FALSE(q.needs_interrupt());
  // The avail NO_INTERRUPT flag is ignored with EVENT_IDX (2.7.7.2).
  put16(layout.driver, kAvailFlagNoInterrupt);
  set_used_event(3);
  q.push_used(3, 1);  // 3 -> 4 crosses 3
  EXPECT_TRUE(q.needs_interrupt());
}

TEST_F(SplitQueueTest, EventIdxPublishesAvailEvent) {
  SplitQueue q(mem, layout, false, true);
  make_available({0, 1, 2});
  ASSERT_TRUE(q.pop());
  EXPECT_EQ(avail_event(), 1);
  ASSERT_TRUE(q.pop());
  ASSERT_TRUE(q.pop());
  EXPECT_FALSE(q.pop());
  EXPECT_EQ(avail_event(), 3);  // notify me when you add the next one
}

// While the device polls, the driver is not asked to notify (2.7.10 /
// 2.7.7): avail_event stays behind with EVENT_IDX, NO_NOTIFY is set without.
TEST_F(SplitQueueTest, NotificationsOffWhilePollingAndPublishedWhenBackOn) {
  SplitQueue q(mem, layout, false, true);
  make_available({0});
  EXPECT_TRUE(q.has_available());
  ASSERT_TRUE(q.pop());
  EXPECT_FALSE(q.has_available());
  EXPECT_EQ(avail_event(), 1);
  q.set_notifications(false);
  EXPECT_EQ(avail_event(), 0);  // behind the next index (1): no publish notifies
  EXPECT_FALSE(vring_need_event(avail_event(), 2, 1));
  make_available({1, 2});
  EXPECT_TRUE(q.has_available());
  ASSERT_TRUE(q.pop());
  ASSERT_TRUE(q.pop());
  EXPECT_FALSE(q.pop());
  EXPECT_EQ(avail_event(), 0);  // left behind while polling
  EXPECT_FALSE(vring_need_event(avail_event(), 4, 3));
  q.set_notifications(true);
  EXPECT_EQ(avail_event(), 3);  // notify at the next one again
  EXPECT_TRUE(vring_need_event(avail_event(), 4, 3));
}

TEST_F(SplitQueueTest, NoNotifyFlagWithoutEventIdx) {
  SplitQueue q(mem, layout, false, false);
  EXPECT_EQ(get16(layout.device), 0);
  q.set_notifications(false);
  EXPECT_EQ(get16(layout.device), kUsedFlagNoNotify);
  q.set_notifications(true);
  EXPECT_EQ(get16(layout.device), 0);
}

TEST_F(SplitQueueTest, AvailIdxJumpBeyondQueueSizeBreaksQueue) {
  SplitQueue q(mem, layout, false, false);
  put16(layout.driver + 2, kSize + 1);
  EXPECT_FALSE(q.pop());
  EXPECT_TRUE(q.broken());
  make_available({0});
  EXPECT_FALSE(q.pop());  // stays stopped
}

TEST_F(SplitQueueTest, HeadBeyondQueueSizeBreaksQueue) {
  SplitQueue q(mem, layout, false, false);
  put16(layout.driver + 4, kSize);
  put16(layout.driver + 2, 1);
  EXPECT_FALSE(q.pop());
  EXPECT_TRUE(q.broken());
}

TEST_F(SplitQueueTest, AvailIdxWrapsAround) {
  SplitQueue q(mem, layout, false, false);
  for (int round = 0; round < 70000 / kSize; ++round) {
    make_available({0, 1, 2, 3});
    for (uint16_t h = 0; h < kSize; ++h) {
      auto c = q.pop();
      ASSERT_TRUE(c);
      ASSERT_EQ(c->head, h);
      q.push_used(h, 0);
    }
  }
  EXPECT_FALSE(q.broken());
}

TEST(QueueLayoutCheck, RejectsBadSizesAndPlacement) {
  std::vector<uint8_t> ram(0x4000);
  GuestMemory mem(ram.data(), {.base = 0x10000, .size = ram.size()});
  const QueueLayout good{8, 0x10000, 0x10100, 0x10200};
  EXPECT_FALSE(check_queue_layout(mem, good, 256));
  auto with = [&](auto change) {
    QueueLayout l = good;
    change(l);
    return check_queue_layout(mem, l, 256).has_value();
  };
  EXPECT_TRUE(with([](QueueLayout& l) { l.size = 0; }));
  EXPECT_TRUE(with([](QueueLayout& l) { l.size = 6; }));        // not a power of two
  EXPECT_TRUE(with([](QueueLayout& l) { l.size = 512; }));      // above max
  EXPECT_TRUE(with([](QueueLayout& l) { l.desc = 0x10008; }));  // misaligned
  EXPECT_TRUE(with([](QueueLayout& l) { l.driver = 0x10101; }));
  EXPECT_TRUE(with([](QueueLayout& l) { l.device = 0x10202; }));
  EXPECT_TRUE(with([](QueueLayout& l) { l.device = 0x13ff0; }));  // runs past RAM
  EXPECT_TRUE(with([](QueueLayout& l) { l.desc = 0x1000; }));     // below RAM
}

// The reason names the guest's address in hex (it used
// to print a number the reader could take for a host pointer).
TEST(QueueLayoutCheck, ReasonNamesTheGuestAddressInHex) {
  std::vector<uint8_t> ram(0x4000);
  GuestMemory mem(ram.data(), {.base = 0x10000, .size = ram.size()});
  const auto why = check_queue_layout(mem, {8, 0x7f0000001008, 0x10100, 0x10200}, 256);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("descriptor table at guest address 0x7f0000001008"), std::string::npos)
      << *why;
}

}  // namespace
}  // namespace minivmm::virtio
