// Hostile guests: every malformed chain ends in IOERR (when a status byte was
// positively identified) or DEVICE_NEEDS_RESET (ring corruption, or a chain
// whose status byte cannot be located: never a used entry without a status,
// which Linux would read as success); the device never touches bytes outside
// the image and serves again after the driver's reset.
#include <gtest/gtest.h>

#include <limits>

#include "devices/virtio/mmio_registers.h"
#include "tests/devices/virtio_blk/virtio_blk_fixture.h"

namespace minivmm::virtio::blk {
namespace {

class HostileTest : public VirtioBlkTest {
 protected:
  void SetUp() override {
    make();
    up();
  }
  void TearDown() override {
    EXPECT_EQ(on_loop([&] { return disk->out_of_range; }), 0u);
  }
  uint64_t outside_ram() const { return ram.end() + 0x1000; }

  // Publishes a hand-made chain whose descriptors start at `head`.
  void publish(uint16_t head) {
    driver->publish_head(0, head);
    driver->notify(0);
  }
  // A chain with no locatable status byte is not returned (no used entry),
  // the device asks for a reset, and works again after it.
  void expect_needs_reset_without_used_entry() {
    driver->settle();
    EXPECT_NE(driver->status() & kStatusDeviceNeedsReset, 0u);
    EXPECT_EQ(driver->used_idx(0), 0u) << "a chain went back used without a status byte";
    up();
    EXPECT_EQ(driver->status() & kStatusDeviceNeedsReset, 0u);
    expect_device_still_serves();
  }
};

TEST_F(HostileTest, LoopingChainSetsNeedsResetWithoutUsedEntry) {
  auto r = prepare(kTypeIn, 0, 512);
  driver->write_descriptor(0, 0, r.header, 16, kDescFlagNext, 1);
  driver->write_descriptor(0, 1, r.data, 512, kDescFlagNext | kDescFlagWrite, 0);
  publish(0);
  EXPECT_EQ(status_of(r), kStatusUntouched);
  expect_needs_reset_without_used_entry();
}

TEST_F(HostileTest, ChainLongerThanQueueViaIndirect) {
  const uint32_t entries = kQueueSize + 4;
  const uint64_t table = ram.alloc(uint64_t{16} * entries, 16);
  auto r = prepare(kTypeOut, 0, 512);
  for (uint32_t i = 0; i < entries; ++i) {
    const bool last = i + 1 == entries;
    const uint64_t addr = i == 0 ? r.header : (last ? r.status : r.data);
    const uint32_t len = i == 0 ? 16 : (last ? 1 : 512);
    const uint16_t flags = last ? kDescFlagWrite : kDescFlagNext;
    const uint16_t next = static_cast<uint16_t>(i + 1);
    uint8_t* d = ram.host(table + uint64_t{16} * i);
    std::memcpy(d, &addr, 8);
    std::memcpy(d + 8, &len, 4);
    std::memcpy(d + 12, &flags, 2);
    std::memcpy(d + 14, &next, 2);
  }
  driver->write_descriptor(0, 0, table, 16 * entries, kDescFlagIndirect, 0);
  publish(0);
  driver->settle();
  EXPECT_EQ(on_loop([&] { return disk->submitted; }), 0u);
  expect_needs_reset_without_used_entry();
}

TEST_F(HostileTest, DataOutsideRamIsIoErr) {
  auto r = prepare(kTypeIn, 0, 512);
  driver->add_chain(0, {{r.header, 16, false}, {outside_ram(), 512, true}, {r.status, 1, true}});
  driver->notify(0);
  EXPECT_EQ(wait_one().len, 1u);
  EXPECT_EQ(status_of(r), kStatusIoErr);
  expect_device_still_serves();
}

TEST_F(HostileTest, DataStraddlingEndOfRamIsIoErr) {
  auto r = prepare(kTypeIn, 0, 512);
  driver->add_chain(0, {{r.header, 16, false}, {ram.end() - 256, 512, true}, {r.status, 1, true}});
  driver->notify(0);
  wait_one();
  EXPECT_EQ(status_of(r), kStatusIoErr);
  expect_device_still_serves();
}

TEST_F(HostileTest, HugeAddressWrapIsRejected) {
  auto r = prepare(kTypeIn, 0, 512);
  driver->add_chain(0, {{r.header, 16, false},
                        {std::numeric_limits<uint64_t>::max() - 100, 512, true},
                        {r.status, 1, true}});
  driver->notify(0);
  wait_one();
  EXPECT_EQ(status_of(r), kStatusIoErr);
  expect_device_still_serves();
}

TEST_F(HostileTest, StatusOutsideRamSetsNeedsResetWithoutUsedEntry) {
  auto r = prepare(kTypeIn, 0, 512);
  driver->add_chain(0, {{r.header, 16, false}, {r.data, 512, true}, {outside_ram(), 1, true}});
  driver->notify(0);
  driver->settle();
  EXPECT_EQ(on_loop([&] { return disk->submitted; }), 0u);
  expect_needs_reset_without_used_entry();
}

TEST_F(HostileTest, WriteWithDeviceWritableDataIsIoErr) {
  auto r = prepare(kTypeOut, 0, 512);
  fill(r, 4);
  submit(r, /*data_writable=*/true);
  wait_one();
  EXPECT_EQ(status_of(r), kStatusIoErr);
  EXPECT_EQ(on_loop([&] { return int{disk->image()[1]}; }), 0);  // nothing written
  expect_device_still_serves();
}

TEST_F(HostileTest, ReadIntoDeviceReadableBufferIsIoErr) {
  auto r = prepare(kTypeIn, 0, 512);
  std::memset(ram.host(r.data), 0x11, 512);
  on_loop([&] {
    disk->image()[0] = 0x99;
    return 0;
  });
  submit(r, /*data_writable=*/false);
  wait_one();
  EXPECT_EQ(status_of(r), kStatusIoErr);
  EXPECT_EQ(ram.host(r.data)[0], 0x11);  // the device did not write a readable buffer
  expect_device_still_serves();
}

TEST_F(HostileTest, ReadableAfterWritableIsIoErr) {
  auto r = prepare(kTypeIn, 0, 512);
  driver->add_chain(
      0, {{r.header, 16, false}, {r.data, 512, true}, {r.data, 16, false}, {r.status, 1, true}});
  driver->notify(0);
  wait_one();
  EXPECT_EQ(status_of(r), kStatusIoErr);
  expect_device_still_serves();
}

TEST_F(HostileTest, ReadOnlyStatusDescriptorSetsNeedsResetWithoutUsedEntry) {
  auto r = prepare(kTypeOut, 0, 512);
  *ram.host(r.status) = 0;  // a stale 0 that Linux would read as success
  driver->add_chain(0, {{r.header, 16, false}, {r.data, 512, false}, {r.status, 1, false}});
  driver->notify(0);
  driver->settle();
  EXPECT_EQ(on_loop([&] { return disk->submitted; }), 0u);
  expect_needs_reset_without_used_entry();
}

TEST_F(HostileTest, MissingStatusDescriptorSetsNeedsResetWithoutUsedEntry) {
  auto r = prepare(kTypeFlush, 0, 0);
  driver->add_chain(0, {{r.header, 16, false}});
  driver->notify(0);
  driver->settle();
  EXPECT_EQ(on_loop([&] { return disk->flushes; }), 0u);
  expect_needs_reset_without_used_entry();
}

TEST_F(HostileTest, NextIndexOutOfRangeSetsNeedsResetWithoutUsedEntry) {
  auto r = prepare(kTypeIn, 0, 512);
  driver->write_descriptor(0, 0, r.header, 16, kDescFlagNext, kQueueSize + 5);
  publish(0);
  expect_needs_reset_without_used_entry();
}

// A head republished while its request is still in flight is
// ring corruption (2.7.13: the driver gave a buffer it does not own), not
// a new request; before, each republish created another one without bound.
TEST_F(HostileTest, RepublishedInFlightHeadSetsNeedsReset) {
  on_loop([&] {
    disk->hold = true;
    return 0;
  });
  auto r = prepare(kTypeIn, 0, 512);
  const uint16_t head = submit(r, true);
  driver->settle();
  for (int i = 0; i < 4 * kQueueSize; ++i) {
    driver->publish_head(0, head);
    driver->notify(0);
    driver->settle();
  }
  EXPECT_EQ(on_loop([&] { return disk->submitted; }), 1u);
  EXPECT_EQ(on_loop([&] { return disk->in_flight(); }), 1u);
  EXPECT_NE(driver->status() & kStatusDeviceNeedsReset, 0u);
  on_loop([&] {
    disk->release();
    return 0;
  });
  up();
  expect_device_still_serves();
}

// A segment larger than the advertised size_max is refused
// (5.2.4 / 5.2.6.1: the driver must respect it), before any disk work.
TEST_F(HostileTest, SegmentLargerThanSizeMaxIsIoErr) {
  FakeDisk::Options big;
  big.size = 8 << 20;
  make(big);
  up();
  const uint32_t size_max = driver->read_config32(8);
  ASSERT_GT(size_max, 0u);
  auto r = prepare(kTypeIn, 0, size_max + 512);
  submit(r, true);
  wait_one();
  EXPECT_EQ(status_of(r), kStatusIoErr);
  EXPECT_EQ(on_loop([&] { return disk->submitted; }), 0u);
  auto ok = prepare(kTypeIn, 0, size_max);  // exactly size_max is fine
  submit(ok, true);
  wait_one();
  EXPECT_EQ(status_of(ok), kStatusOk);
}

// A disk whose submit() throws: the request completes with IOERR
// and leaves nothing in flight (a reset does not wait for it forever).
TEST_F(HostileTest, SubmitThrowingCompletesWithIoErr) {
  on_loop([&] {
    disk->throw_on_submit = true;
    return 0;
  });
  auto r = prepare(kTypeOut, 0, 512);
  const uint16_t head = submit(r, false);
  auto u = wait_one();
  EXPECT_EQ(u.id, head);
  EXPECT_EQ(status_of(r), kStatusIoErr);
  on_loop([&] {
    disk->throw_on_submit = false;
    return 0;
  });
  expect_device_still_serves();
  up();  // reset: returns, nothing left in flight
  expect_device_still_serves();
}

TEST_F(HostileTest, HeaderTooShortIsIoErr) {
  auto r = prepare(kTypeIn, 0, 0);
  driver->add_chain(0, {{r.header, 8, false}, {r.status, 1, true}});
  driver->notify(0);
  wait_one();
  EXPECT_EQ(status_of(r), kStatusIoErr);
  expect_device_still_serves();
}

TEST_F(HostileTest, SectorsBeyondCapacityAreIoErr) {
  const uint64_t capacity = (1 << 20) / 512;
  for (uint64_t sector :
       {capacity, capacity - 1 /* 2 sectors: one past the end */,
        std::numeric_limits<uint64_t>::max(), std::numeric_limits<uint64_t>::max() / 512 + 1}) {
    auto r = prepare(kTypeIn, sector, 1024);
    submit(r, true);
    wait_one();
    EXPECT_EQ(status_of(r), kStatusIoErr) << "sector " << sector;
  }
  auto last = prepare(kTypeIn, capacity - 1, 512);  // the very last sector is fine
  submit(last, true);
  wait_one();
  EXPECT_EQ(status_of(last), kStatusOk);
  EXPECT_EQ(on_loop([&] { return disk->submitted; }), 1u);
  expect_device_still_serves();
}

TEST_F(HostileTest, DiscardBeyondCapacityIsIoErr) {
  auto d = prepare(kTypeDiscard, 0, 16);
  const uint64_t seg[2] = {std::numeric_limits<uint64_t>::max() - 1, 4};
  std::memcpy(ram.host(d.data), seg, 16);
  submit(d, false);
  wait_one();
  EXPECT_EQ(status_of(d), kStatusIoErr);
  expect_device_still_serves();
}

TEST_F(HostileTest, DiscardWithTwoSegmentsUnsupported) {
  auto d = prepare(kTypeDiscard, 0, 32);
  const uint64_t segs[4] = {0, 1, 8, 1};
  std::memcpy(ram.host(d.data), segs, 32);
  submit(d, false);
  wait_one();
  EXPECT_EQ(status_of(d), kStatusUnsupp);
  expect_device_still_serves();
}

TEST_F(HostileTest, DataNotMultipleOf512IsIoErr) {
  auto r = prepare(kTypeOut, 0, 100);
  submit(r, false);
  wait_one();
  EXPECT_EQ(status_of(r), kStatusIoErr);
  expect_device_still_serves();
}

TEST_F(HostileTest, NestedIndirectSetsNeedsResetWithoutUsedEntry) {
  // A table whose only entry is itself an indirect descriptor.
  const uint64_t inner = ram.alloc(16, 16);
  const uint64_t outer = ram.alloc(16, 16);
  const uint32_t len16 = 16;
  const uint16_t indirect = kDescFlagIndirect;
  std::memcpy(ram.host(outer), &inner, 8);
  std::memcpy(ram.host(outer + 8), &len16, 4);
  std::memcpy(ram.host(outer + 12), &indirect, 2);
  driver->write_descriptor(0, 0, outer, 16, kDescFlagIndirect, 0);
  publish(0);
  expect_needs_reset_without_used_entry();
}

TEST_F(HostileTest, IndirectBadLengthSetsNeedsResetWithoutUsedEntry) {
  // 20 bytes: not a whole number of descriptors.
  const uint64_t table = ram.alloc(32, 16);
  driver->write_descriptor(0, 0, table, 20, kDescFlagIndirect, 0);
  publish(0);
  expect_needs_reset_without_used_entry();
}

TEST_F(HostileTest, IndirectWithoutNegotiationSetsNeedsResetWithoutUsedEntry) {
  driver->reset();
  up(offered() & ~feature_bit(kFeatureRingIndirectDesc));
  auto r = prepare(kTypeFlush, 0, 0);
  driver->add_chain(0, {{r.header, 16, false}, {r.status, 1, true}}, /*indirect=*/true);
  driver->notify(0);
  driver->settle();
  EXPECT_EQ(status_of(r), kStatusUntouched);
  expect_needs_reset_without_used_entry();
}

TEST_F(HostileTest, AvailIdxJumpSetsNeedsReset) {
  driver->set_avail_idx(0, kQueueSize + 3);
  driver->notify(0);
  driver->settle();
  EXPECT_NE(driver->status() & kStatusDeviceNeedsReset, 0u);
  EXPECT_EQ(driver->interrupts(), 1u);
  EXPECT_EQ(driver->last_interrupt_status() & kInterruptConfigChange, kInterruptConfigChange);
  // The driver resets and the device works again.
  up();
  EXPECT_EQ(driver->status() & kStatusDeviceNeedsReset, 0u);
  expect_device_still_serves();
}

TEST_F(HostileTest, HeadBeyondQueueSizeSetsNeedsReset) {
  publish(kQueueSize + 1);
  driver->settle();
  EXPECT_NE(driver->status() & kStatusDeviceNeedsReset, 0u);
  up();
  expect_device_still_serves();
}

TEST_F(HostileTest, GarbageDescriptorTableNeverEscapes) {
  // Every descriptor random: whatever happens, nothing outside the image or
  // RAM is touched and the queue keeps going.
  // In-RAM addresses stay in a scratch area so the rings themselves survive.
  const uint64_t scratch = ram.alloc(72 << 10, 4096);
  uint32_t x = 12345;
  auto next = [&x] { return x = x * 1103515245u + 12345u; };
  for (uint16_t i = 0; i < kQueueSize; ++i) {
    const uint64_t addr =
        (next() & 1) ? scratch + (next() % (64u << 10)) : (uint64_t{next()} << 32 | next());
    driver->write_descriptor(0, i, addr, next() % 4096, static_cast<uint16_t>(next() & 7),
                             static_cast<uint16_t>(next() % (kQueueSize + 2)));
  }
  for (uint16_t i = 0; i < kQueueSize; ++i) driver->publish_head(0, i);
  driver->notify(0);
  driver->settle();
  // Either every chain came back with a status byte written, or the device
  // stopped and asked for a reset; never a used entry without a status.
  if ((driver->status() & kStatusDeviceNeedsReset) == 0) {
    EXPECT_EQ(driver->wait_used(0, kQueueSize).size(), kQueueSize);
  }
  up();
  expect_device_still_serves();
}

}  // namespace
}  // namespace minivmm::virtio::blk
