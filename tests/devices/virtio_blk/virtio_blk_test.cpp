#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "devices/virtio/mmio_registers.h"
#include "devices/virtio_blk/virtio_blk_config_space.h"
#include "tests/devices/virtio_blk/virtio_blk_fixture.h"

namespace minivmm::virtio::blk {
namespace {

uint64_t bit(unsigned b) { return feature_bit(b); }

TEST_F(VirtioBlkTest, WriteThenReadRoundTrip) {
  make();
  up();
  auto w = prepare(kTypeOut, 3, 1024);
  fill(w, 1);
  const uint16_t head = submit(w, false);
  auto u = wait_one();
  EXPECT_EQ(u.id, head);
  EXPECT_EQ(u.len, 1u);
  EXPECT_EQ(status_of(w), kStatusOk);
  EXPECT_EQ(on_loop([&] {
              return std::memcmp(disk->image().data() + 3L * 512, ram.host(w.data), 1024);
            }),
            0);

  auto r = prepare(kTypeIn, 3, 1024);
  submit(r, true);
  u = wait_one();
  EXPECT_EQ(u.len, 1025u);  // data + status byte
  EXPECT_EQ(status_of(r), kStatusOk);
  EXPECT_EQ(std::memcmp(ram.host(r.data), ram.host(w.data), 1024), 0);
}

TEST_F(VirtioBlkTest, IndirectChainsWork) {
  make();
  up();
  auto w = prepare(kTypeOut, 0, 512);
  fill(w, 9);
  submit(w, false, /*indirect=*/true);
  wait_one();
  EXPECT_EQ(status_of(w), kStatusOk);
  auto r = prepare(kTypeIn, 0, 512);
  submit(r, true, true);
  EXPECT_EQ(wait_one().len, 513u);
  EXPECT_EQ(std::memcmp(ram.host(r.data), ram.host(w.data), 512), 0);
}

TEST_F(VirtioBlkTest, HeaderAndStatusSplitAnyWay) {
  // 2.6.4: no assumption on framing. Header in two pieces, data and status
  // in one writable descriptor (status = its last byte).
  make();
  up();
  on_loop([&] {
    disk->image()[512] = 0x77;
    return 0;
  });
  auto r = prepare(kTypeIn, 1, 0);
  const uint64_t data_and_status = ram.alloc(513, 512);
  ram.host(data_and_status)[512] = kStatusUntouched;
  driver->add_chain(0, {{r.header, 10, false},
                        {r.header + 10, 6, false},
                        {data_and_status, 513, true}});
  driver->notify(0);
  EXPECT_EQ(wait_one().len, 513u);
  EXPECT_EQ(ram.host(data_and_status)[512], kStatusOk);
  EXPECT_EQ(ram.host(data_and_status)[0], 0x77);
}

TEST_F(VirtioBlkTest, FlushReachesDisk) {
  make();
  up();
  auto f = prepare(kTypeFlush, 0, 0);
  submit(f, false);
  EXPECT_EQ(wait_one().len, 1u);
  EXPECT_EQ(status_of(f), kStatusOk);
  EXPECT_EQ(on_loop([&] { return disk->flushes; }), 1u);
}

TEST_F(VirtioBlkTest, GetIdReturnsSerial) {
  make();
  up();
  auto g = prepare(kTypeGetId, 0, 20);
  std::memset(ram.host(g.data), 0xff, 20);
  submit(g, true);
  EXPECT_EQ(wait_one().len, 21u);
  EXPECT_EQ(status_of(g), kStatusOk);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(ram.host(g.data))), "minivmm-serial-1");
  for (int i = 16; i < 20; ++i) EXPECT_EQ(ram.host(g.data)[i], 0);
}

TEST_F(VirtioBlkTest, DiscardAndWriteZeroes) {
  make();
  up();
  on_loop([&] {
    std::fill_n(disk->image().begin() + 1024, 1024, 0xab);
    return 0;
  });
  auto d = prepare(kTypeDiscard, 0, 16);
  const uint64_t seg[2] = {4, uint64_t{2}};  // sector 4, 2 sectors, flags 0
  std::memcpy(ram.host(d.data), seg, 16);
  submit(d, false);
  wait_one();
  EXPECT_EQ(status_of(d), kStatusOk);

  auto z = prepare(kTypeWriteZeroes, 0, 16);
  const uint64_t zseg[2] = {2, uint64_t{2} | (uint64_t{kSegmentFlagUnmap} << 32)};
  std::memcpy(ram.host(z.data), zseg, 16);
  submit(z, false);
  wait_one();
  EXPECT_EQ(status_of(z), kStatusOk);

  auto ranges = on_loop([&] { return disk->ranges; });
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0].op, storage::RequestType::Discard);
  EXPECT_EQ(ranges[0].offset, 4u * 512);
  EXPECT_EQ(ranges[0].length, 2u * 512);
  EXPECT_EQ(ranges[1].op, storage::RequestType::WriteZeroes);
  EXPECT_EQ(ranges[1].offset, 2u * 512);
  EXPECT_TRUE(ranges[1].unmap);
  EXPECT_EQ(on_loop([&] { return int{disk->image()[1024]}; }), 0);
}

TEST_F(VirtioBlkTest, DiscardWithUnmapFlagUnsupported) {
  make();
  up();
  auto d = prepare(kTypeDiscard, 0, 16);
  const uint64_t seg[2] = {4, 2 | (uint64_t{kSegmentFlagUnmap} << 32)};
  std::memcpy(ram.host(d.data), seg, 16);
  submit(d, false);
  wait_one();
  EXPECT_EQ(status_of(d), kStatusUnsupp);
  EXPECT_TRUE(on_loop([&] { return disk->ranges; }).empty());
}

TEST_F(VirtioBlkTest, DiscardNotNegotiatedUnsupported) {
  make();
  up(offered() & ~bit(kFeatureDiscard));
  auto d = prepare(kTypeDiscard, 0, 16);
  const uint64_t seg[2] = {4, 2};
  std::memcpy(ram.host(d.data), seg, 16);
  submit(d, false);
  wait_one();
  EXPECT_EQ(status_of(d), kStatusUnsupp);
}

TEST_F(VirtioBlkTest, UnknownRequestTypesAreUnsupportedAndNeverReachTheDisk) {
  make();
  up();
  // Types the device does not implement (FLUSH_OUT, GET_LIFETIME,
  // SECURE_ERASE, a zoned one) and values the spec does not define: none
  // may turn into a disk operation (a flush, say) on the way down.
  for (uint32_t type : {2u, 3u, 5u, 10u, 14u, 16u, 99u, 0xffffffffu}) {
    SCOPED_TRACE(type);
    auto r = prepare(type, 0, 0);
    submit(r, false);
    EXPECT_EQ(wait_one().len, 1u);
    EXPECT_EQ(status_of(r), kStatusUnsupp);
  }
  EXPECT_EQ(on_loop([&] { return disk->submitted; }), 0u);
  EXPECT_EQ(on_loop([&] { return disk->flushes; }), 0u);
}

TEST_F(VirtioBlkTest, DiskErrorBecomesIoErr) {
  make();
  up();
  on_loop([&] {
    disk->fail_with = EIO;
    return 0;
  });
  auto r = prepare(kTypeIn, 0, 512);
  submit(r, true);
  EXPECT_EQ(wait_one().len, 1u);
  EXPECT_EQ(status_of(r), kStatusIoErr);
}

TEST_F(VirtioBlkTest, OfferedFeatures) {
  make();
  const uint64_t f = offered();
  for (unsigned b : {kFeatureVersion1, kFeatureRingIndirectDesc, kFeatureRingEventIdx,
                     kFeatureFlush, kFeatureConfigWce, kFeatureBlkSize, kFeatureSegMax,
                     kFeatureSizeMax, kFeatureDiscard, kFeatureWriteZeroes}) {
    EXPECT_TRUE(f & bit(b)) << "feature bit " << b;
  }
  EXPECT_FALSE(f & bit(kFeatureRo));
  EXPECT_FALSE(f & bit(kFeatureMq));  // one queue
  EXPECT_EQ(driver->read32(mmio::kDeviceId), kDeviceId);
}

TEST_F(VirtioBlkTest, FlushOfferedEvenInWritethrough) {
  make({.mode = storage::CacheMode::Writethrough});
  EXPECT_TRUE(offered() & bit(kFeatureFlush));
  EXPECT_TRUE(offered() & bit(kFeatureConfigWce));
  EXPECT_EQ(driver->read_config8(kWritebackOffset), 0);
}

TEST_F(VirtioBlkTest, ConfigSpaceValues) {
  make({.size = 8 << 20, .block_size = 4096});
  EXPECT_EQ(driver->read_config64(offsetof(ConfigSpace, capacity)), (8u << 20) / 512);
  EXPECT_EQ(driver->read_config32(offsetof(ConfigSpace, size_max)), 1u << 20);
  EXPECT_EQ(driver->read_config32(offsetof(ConfigSpace, seg_max)), kQueueSize - 2u);
  EXPECT_EQ(driver->read_config32(offsetof(ConfigSpace, blk_size)), 4096u);
  EXPECT_EQ(driver->read_config8(kWritebackOffset), 1);  // writeback mode
  EXPECT_EQ(driver->read_config32(offsetof(ConfigSpace, num_queues)) & 0xffff, 1u);
  EXPECT_EQ(driver->read_config32(offsetof(ConfigSpace, max_discard_sectors)), 1u << 22);
  EXPECT_EQ(driver->read_config32(offsetof(ConfigSpace, max_discard_seg)), 1u);
  EXPECT_EQ(driver->read_config32(offsetof(ConfigSpace, discard_sector_alignment)), 8u);
  EXPECT_EQ(driver->read_config32(offsetof(ConfigSpace, max_write_zeroes_sectors)), 1u << 22);
  EXPECT_EQ(driver->read_config32(offsetof(ConfigSpace, max_write_zeroes_seg)), 1u);
  EXPECT_EQ(driver->read_config8(offsetof(ConfigSpace, write_zeroes_may_unmap)), 1);
  EXPECT_EQ(driver->read_config32(sizeof(ConfigSpace)), 0u);  // past the end
}

TEST_F(VirtioBlkTest, MultiQueue) {
  make({}, {"mq", 4, kQueueSize});
  EXPECT_TRUE(offered() & bit(kFeatureMq));
  EXPECT_EQ(driver->read_config32(offsetof(ConfigSpace, num_queues)) & 0xffff, 4u);
  up(0, 4);
  for (uint16_t q = 0; q < 4; ++q) {
    auto w = prepare(kTypeOut, q, 512);
    fill(w, static_cast<uint8_t>(q));
    submit(w, false, false, q);
    auto used = driver->wait_used(q, 1);
    ASSERT_EQ(used.size(), 1u) << "queue " << q;
    EXPECT_EQ(status_of(w), kStatusOk);
    EXPECT_EQ(on_loop([&] { return int{disk->image()[q * 512 + 1]}; }), (q + 7) & 0xff);
  }
}

TEST_F(VirtioBlkTest, WriteCacheToggleReachesDisk) {
  make({.mode = storage::CacheMode::Writethrough});
  up();
  EXPECT_EQ(driver->read_config8(kWritebackOffset), 0);
  const uint32_t gen = driver->read32(mmio::kConfigGeneration);
  driver->write_config8(kWritebackOffset, 1);
  EXPECT_EQ(on_loop([&] { return disk->wce_calls; }), std::vector<bool>{true});
  EXPECT_TRUE(on_loop([&] { return disk->write_cache_enabled(); }));
  EXPECT_EQ(driver->read_config8(kWritebackOffset), 1);
  EXPECT_NE(driver->read32(mmio::kConfigGeneration), gen);
  driver->write_config8(kWritebackOffset, 0);
  EXPECT_EQ(driver->read_config8(kWritebackOffset), 0);
  EXPECT_EQ(on_loop([&] { return disk->wce_calls; }), (std::vector<bool>{true, false}));
}

TEST_F(VirtioBlkTest, WriteCacheByteReadOnlyWithoutConfigWce) {
  make({.mode = storage::CacheMode::Writethrough});
  up(offered() & ~bit(kFeatureConfigWce));
  driver->write_config8(kWritebackOffset, 1);
  EXPECT_TRUE(on_loop([&] { return disk->wce_calls; }).empty());
  EXPECT_EQ(driver->read_config8(kWritebackOffset), 0);
}

TEST_F(VirtioBlkTest, NoFlushNoConfigWceForcesWritethrough) {
  make({.mode = storage::CacheMode::Writeback});
  up(offered() & ~bit(kFeatureFlush) & ~bit(kFeatureConfigWce));
  EXPECT_EQ(on_loop([&] { return disk->wce_calls; }), std::vector<bool>{false});
  EXPECT_EQ(driver->read_config8(kWritebackOffset), 0);
}

TEST_F(VirtioBlkTest, FlushWithoutConfigWceKeepsWriteback) {
  make({.mode = storage::CacheMode::Writeback});
  up(offered() & ~bit(kFeatureConfigWce));
  EXPECT_TRUE(on_loop([&] { return disk->wce_calls; }).empty());
  EXPECT_EQ(driver->read_config8(kWritebackOffset), 1);
}

TEST_F(VirtioBlkTest, ResetRestoresConfiguredWriteCache) {
  make({.mode = storage::CacheMode::Writethrough});
  up();
  driver->write_config8(kWritebackOffset, 1);
  driver->reset();
  EXPECT_FALSE(on_loop([&] { return disk->write_cache_enabled(); }));
  EXPECT_EQ(driver->read_config8(kWritebackOffset), 0);
}

TEST_F(VirtioBlkTest, ReadOnlyDisk) {
  make({.read_only = true});
  const uint64_t f = offered();
  EXPECT_TRUE(f & bit(kFeatureRo));
  EXPECT_FALSE(f & bit(kFeatureDiscard));
  EXPECT_FALSE(f & bit(kFeatureWriteZeroes));
  up();
  auto w = prepare(kTypeOut, 0, 512);
  fill(w, 3);
  submit(w, false);
  wait_one();
  EXPECT_EQ(status_of(w), kStatusIoErr);
  EXPECT_EQ(on_loop([&] { return disk->submitted; }), 0u);  // never reached the disk
  auto r = prepare(kTypeIn, 0, 512);
  submit(r, true);
  wait_one();
  EXPECT_EQ(status_of(r), kStatusOk);
}

TEST_F(VirtioBlkTest, EventIdxSuppressesInterruptsUntilUsedEvent) {
  make();
  up();                          // EVENT_IDX is offered and negotiated
  driver->set_used_event(0, 1);  // interrupt only once used idx passes 1
  auto a = prepare(kTypeFlush, 0, 0);
  submit(a, false);
  ASSERT_EQ(driver->wait_used(0, 1).size(), 1u);
  driver->settle();
  EXPECT_EQ(driver->interrupts(), 0u);
  auto b = prepare(kTypeFlush, 0, 0);
  submit(b, false);
  ASSERT_EQ(driver->wait_used(0, 1).size(), 1u);
  driver->settle();
  EXPECT_EQ(driver->interrupts(), 1u);
  EXPECT_EQ(driver->last_interrupt_status(), kInterruptUsedBuffer);
  // Once the loop stops polling (at most its poll window later; while it
  // polls, avail_event is left behind on purpose), avail_event tells the
  // driver to notify at the next buffer (2.7.10).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (driver->avail_event(0) != driver->avail_idx(0) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  EXPECT_EQ(driver->avail_event(0), driver->avail_idx(0));
}

TEST_F(VirtioBlkTest, NoInterruptFlagWithoutEventIdx) {
  make();
  up(offered() & ~bit(kFeatureRingEventIdx));
  driver->set_avail_flags(0, kAvailFlagNoInterrupt);
  auto a = prepare(kTypeFlush, 0, 0);
  submit(a, false);
  ASSERT_EQ(driver->wait_used(0, 1).size(), 1u);
  driver->settle();
  EXPECT_EQ(driver->interrupts(), 0u);
  driver->set_avail_flags(0, 0);
  auto b = prepare(kTypeFlush, 0, 0);
  submit(b, false);
  ASSERT_EQ(driver->wait_used(0, 1).size(), 1u);
  driver->settle();
  EXPECT_EQ(driver->interrupts(), 1u);
}

TEST_F(VirtioBlkTest, BatchOfRequestsIsOneKick) {
  make();
  up();
  on_loop([&] {
    disk->hold = true;
    return 0;
  });
  std::vector<GuestRequest> reqs;
  for (int i = 0; i < 4; ++i) {
    reqs.push_back(prepare(kTypeIn, i, 512));
    driver->add_chain(0, {{reqs.back().header, 16, false},
                          {reqs.back().data, 512, true},
                          {reqs.back().status, 1, true}});
  }
  driver->notify(0);
  driver->settle();
  EXPECT_EQ(on_loop([&] { return disk->submitted; }), 4u);
  EXPECT_EQ(on_loop([&] { return disk->kicks; }), 1u);
  on_loop([&] {
    disk->release();
    return 0;
  });
  EXPECT_EQ(driver->wait_used(0, 4).size(), 4u);
  for (auto& r : reqs) EXPECT_EQ(status_of(r), kStatusOk);
}

TEST_F(VirtioBlkTest, ResetMidFlightDropsCompletions) {
  make();
  up();
  on_loop([&] {
    disk->hold = true;
    return 0;
  });
  auto r = prepare(kTypeIn, 0, 512);
  submit(r, true);
  driver->settle();
  EXPECT_EQ(on_loop([&] { return disk->in_flight(); }), 1u);
  driver->reset();  // drains the disk, then forgets the request
  EXPECT_EQ(driver->status(), 0u);
  EXPECT_EQ(on_loop([&] { return disk->in_flight(); }), 0u);
  EXPECT_EQ(driver->used_idx(0), 0u);  // nothing pushed after reset
  EXPECT_EQ(status_of(r), kStatusUntouched);
  on_loop([&] {
    disk->hold = false;
    return 0;
  });
  up();
  expect_device_still_serves();
}

TEST_F(VirtioBlkTest, QuiesceCompletesInFlightWritesThenFlushes) {
  make();
  up();
  on_loop([&] {
    disk->hold = true;
    return 0;
  });
  auto w = prepare(kTypeOut, 3, 512);
  std::memset(ram.host(w.data), 0x5c, 512);
  submit(w, false);
  driver->settle();
  EXPECT_EQ(on_loop([&] { return disk->in_flight(); }), 1u);
  EXPECT_EQ(on_loop([&] { return disk->flushes; }), 0u);
  transport->quiesce();
  EXPECT_EQ(status_of(w), kStatusOk);                     // the guest's write completed
  EXPECT_EQ(driver->used_idx(0), 1u);                     // and was reported
  EXPECT_EQ(on_loop([&] { return disk->flushes; }), 1u);  // then one flush
  EXPECT_EQ(on_loop([&] { return disk->image()[3UL * 512]; }), 0x5c);
}

TEST_F(VirtioBlkTest, QuiesceDoesNotFlushReadOnlyDisk) {
  FakeDisk::Options o;
  o.read_only = true;
  make(o);
  up();
  transport->quiesce();
  EXPECT_EQ(on_loop([&] { return disk->flushes; }), 0u);
}

}  // namespace
}  // namespace minivmm::virtio::blk
