#include "devices/virtio/virtio_mmio_transport.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "devices/virtio/mmio_registers.h"
#include "devices/virtio/virtio_constants.h"
#include "tests/devices/virtio/virtio_driver_harness.h"

namespace minivmm::virtio {
namespace {

using testing::GuestRam;
using testing::VirtioDriverHarness;

constexpr uint64_t kFeatureA = feature_bit(3);
constexpr uint64_t kOffered = feature_bit(kFeatureVersion1) | kFeatureA;

// A device that records what the transport does to it. Counters are atomic:
// the transport calls some methods on the event-loop thread.
class RecordingDevice : public VirtioDevice {
 public:
  uint32_t device_id() const override { return 42; }
  uint64_t device_features() const override { return kOffered; }
  uint16_t queue_count() const override { return 2; }
  uint16_t queue_max_size() const override { return 16; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override {
    for (size_t i = 0; i < data.size(); ++i) {
      data[i] = offset + i < sizeof(config) ? config[offset + i] : 0;
    }
  }
  void write_config(uint64_t offset, std::span<const uint8_t> data, TransportSignals&) override {
    for (size_t i = 0; i < data.size() && offset + i < sizeof(config); ++i) {
      config[offset + i] = data[i];
    }
  }
  bool accept_features(uint64_t negotiated) override {
    accepted = negotiated;
    return !refuse_features;
  }
  void activate(DeviceActivation a) override {
    ++activations;
    activated_features = a.features;
    ready_queues = 0;
    for (auto& q : a.queues) ready_queues += q.ready();
    signals = a.signals;
  }
  void notify(uint16_t queue) override { ++notifies[queue]; }
  void reset() override { ++resets; }
  void quiesce() override { ++quiesces; }

  uint8_t config[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  bool refuse_features = false;
  uint64_t accepted = 0;
  std::atomic<int> activations{0}, resets{0}, quiesces{0};
  std::atomic<int> notifies[2] = {0, 0};
  uint64_t activated_features = 0;
  int ready_queues = 0;
  TransportSignals* signals = nullptr;
};

class MmioTransportTest : public ::testing::Test {
 protected:
  EventLoop loop{"transport-test"};
  GuestRam ram{1 << 20};
  RecordingDevice* dev = nullptr;
  std::unique_ptr<VirtioMmioTransport> transport = [this] {
    auto d = std::make_unique<RecordingDevice>();
    dev = d.get();
    return std::make_unique<VirtioMmioTransport>(ram.memory(), std::move(d), loop);
  }();
  VirtioDriverHarness driver{*transport, ram, transport->irq_eventfd(), loop,
                             transport->queue_notify_eventfds()};

  void bring_up() {
    ASSERT_TRUE(driver.negotiate(kOffered));
    driver.setup_queue(0, 8);
    driver.setup_queue(1, 16);
    driver.driver_ok();
  }
};

TEST_F(MmioTransportTest, IdentityRegisters) {
  EXPECT_EQ(driver.read32(mmio::kMagicValue), 0x74726976u);
  EXPECT_EQ(driver.read32(mmio::kVersionReg), 2u);
  EXPECT_EQ(driver.read32(mmio::kDeviceId), 42u);
  EXPECT_EQ(driver.read32(mmio::kVendorIdReg), mmio::kVendorId);
  EXPECT_EQ(driver.device_features(), kOffered);
  driver.write32(mmio::kQueueSel, 1);
  EXPECT_EQ(driver.read32(mmio::kQueueNumMax), 16u);
  driver.write32(mmio::kQueueSel, 2);  // no such queue
  EXPECT_EQ(driver.read32(mmio::kQueueNumMax), 0u);
}

TEST_F(MmioTransportTest, AcceptsOfferedFeaturesAndActivates) {
  bring_up();
  EXPECT_EQ(dev->accepted, kOffered);
  EXPECT_EQ(dev->activations.load(), 1);
  EXPECT_EQ(dev->activated_features, kOffered);
  EXPECT_EQ(dev->ready_queues, 2);
  EXPECT_EQ(driver.status(),
            kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
}

TEST_F(MmioTransportTest, RefusesFeaturesNotOffered) {
  EXPECT_FALSE(driver.negotiate(kOffered | feature_bit(7)));
  EXPECT_EQ(dev->accepted, 0u);  // the device was never asked
}

TEST_F(MmioTransportTest, RequiresVersion1) {
  EXPECT_FALSE(driver.negotiate(kFeatureA));
  EXPECT_TRUE(driver.negotiate(feature_bit(kFeatureVersion1)));
}

TEST_F(MmioTransportTest, DeviceMayRefuseFeatureSet) {
  dev->refuse_features = true;
  EXPECT_FALSE(driver.negotiate(kOffered));
  // DRIVER_OK without FEATURES_OK does not activate.
  driver.driver_ok();
  EXPECT_EQ(dev->activations.load(), 0);
  EXPECT_EQ(driver.status() & kStatusDriverOk, 0u);
}

TEST_F(MmioTransportTest, StatusWritesCannotClearBits) {
  bring_up();
  driver.write32(mmio::kStatus, kStatusAcknowledge);
  EXPECT_NE(driver.status() & kStatusDriverOk, 0u);
}

TEST_F(MmioTransportTest, DriverFeaturesFixedAfterFeaturesOk) {
  bring_up();
  driver.write32(mmio::kDriverFeaturesSel, 0);
  driver.write32(mmio::kDriverFeatures, 0xffffffff);
  driver.reset();
  EXPECT_TRUE(driver.negotiate(kOffered));  // the ignored write left nothing behind
}

TEST_F(MmioTransportTest, QueueNotifyWriteReachesDeviceOnLoop) {
  bring_up();
  const int before = dev->notifies[1].load();  // activation pokes each queue once
  driver.notify(1);
  driver.settle();
  EXPECT_EQ(dev->notifies[1].load(), before + 1);
  EXPECT_EQ(dev->notifies[0].load(), 1);
}

TEST_F(MmioTransportTest, IoeventfdPathReachesDevice) {
  bring_up();
  const auto fds = transport->queue_notify_eventfds();
  ASSERT_EQ(fds.size(), 2u);
  EXPECT_EQ(fds[0].first, 0u);
  EXPECT_EQ(fds[1].first, 1u);
  const int before = dev->notifies[0].load();
  const uint64_t one = 1;
  ASSERT_EQ(::write(fds[0].second, &one, sizeof(one)), 8);  // what KVM does
  driver.settle();
  EXPECT_EQ(dev->notifies[0].load(), before + 1);
}

TEST_F(MmioTransportTest, NotifyBeforeDriverOkIgnored) {
  ASSERT_TRUE(driver.negotiate(kOffered));
  driver.notify(0);
  driver.settle();
  EXPECT_EQ(dev->notifies[0].load(), 0);
}

TEST_F(MmioTransportTest, ResetResetsDeviceAndRegisters) {
  bring_up();
  const int resets_before = dev->resets.load();
  driver.reset();
  EXPECT_EQ(dev->resets.load(), resets_before + 1);
  EXPECT_EQ(driver.status(), 0u);
  driver.write32(mmio::kQueueSel, 0);
  EXPECT_EQ(driver.read32(mmio::kQueueReady), 0u);
  EXPECT_EQ(driver.read32(mmio::kQueueDescLow), 0u);
  // Notifications after reset do not reach the device.
  const int n = dev->notifies[0].load();
  driver.notify(0);
  driver.settle();
  EXPECT_EQ(dev->notifies[0].load(), n);
  // And it can be brought up again.
  bring_up();
  EXPECT_EQ(dev->activations.load(), 2);
}

TEST_F(MmioTransportTest, QueueRegistersLockedWhileReady) {
  ASSERT_TRUE(driver.negotiate(kOffered));
  driver.setup_queue(0, 8);
  const uint32_t desc = driver.read32(mmio::kQueueDescLow);
  driver.write32(mmio::kQueueDescLow, desc + 0x1000);
  EXPECT_EQ(driver.read32(mmio::kQueueDescLow), desc);
}

TEST_F(MmioTransportTest, BadQueueLayoutSetsNeedsReset) {
  ASSERT_TRUE(driver.negotiate(kOffered));
  driver.setup_queue(0, 8);
  driver.write32(mmio::kQueueSel, 1);
  driver.write32(mmio::kQueueNum, 6);  // not a power of two
  driver.write32(mmio::kQueueDescLow, static_cast<uint32_t>(ram.alloc(256)));
  driver.write32(mmio::kQueueReady, 1);
  driver.driver_ok();
  EXPECT_NE(driver.status() & kStatusDeviceNeedsReset, 0u);
  EXPECT_EQ(dev->activations.load(), 0);
  EXPECT_GE(driver.interrupts(), 1u);
  EXPECT_EQ(driver.last_interrupt_status(), kInterruptConfigChange);
  driver.reset();
  EXPECT_EQ(driver.status(), 0u);  // reset clears DEVICE_NEEDS_RESET
}

TEST_F(MmioTransportTest, ConfigReadsAndGeneration) {
  EXPECT_EQ(driver.read_config32(0), 0x04030201u);
  EXPECT_EQ(driver.read_config8(5), 6);
  EXPECT_EQ(driver.read_config8(200), 0);
  const uint32_t gen = driver.read32(mmio::kConfigGeneration);
  EXPECT_EQ(driver.read32(mmio::kConfigGeneration), gen);
  bring_up();
  loop.run_sync([&] { dev->signals->config_changed(); });
  EXPECT_EQ(driver.read32(mmio::kConfigGeneration), gen + 1);
  EXPECT_EQ(driver.interrupts(), 1u);
  EXPECT_EQ(driver.last_interrupt_status(), kInterruptConfigChange);
  EXPECT_EQ(driver.read32(mmio::kInterruptStatus), 0u);  // acknowledged
}

TEST_F(MmioTransportTest, UsedBufferInterruptStatusBit) {
  bring_up();
  loop.run_sync([&] { dev->signals->used_buffer(); });
  EXPECT_EQ(driver.read32(mmio::kInterruptStatus), kInterruptUsedBuffer);
  EXPECT_EQ(driver.interrupts(), 1u);
  EXPECT_EQ(driver.last_interrupt_status(), kInterruptUsedBuffer);
}

TEST_F(MmioTransportTest, NarrowRegisterAccessIgnored) {
  uint16_t v = 0xffff;
  transport->mmio_read(mmio::kMagicValue, reinterpret_cast<uint8_t*>(&v), 2);
  EXPECT_EQ(v, 0);
  ASSERT_TRUE(driver.negotiate(kOffered));
  const uint8_t zero = 0;
  transport->mmio_write(mmio::kStatus, &zero, 1);  // a 1-byte "reset" is not a reset
  EXPECT_NE(driver.status(), 0u);
}

}  // namespace
}  // namespace minivmm::virtio
