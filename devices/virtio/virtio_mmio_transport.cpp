#include "devices/virtio/virtio_mmio_transport.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "common/error.h"
#include "devices/virtio/mmio_registers.h"
#include "devices/virtio/virtio_constants.h"

namespace minivmm::virtio {

namespace {

// Which 32 bits of a 64-bit register pair a Low/High or *Sel register names
// (4.2.2: DeviceFeaturesSel/DriverFeaturesSel 0 or 1, QueueDescLow/High...).
enum class Half : uint32_t { Low = 0, High = 1 };

void set_half(uint64_t& value, Half half, uint32_t bits) {
  const unsigned shift = static_cast<uint32_t>(half) * 32;
  value = (value & ~(uint64_t{0xffffffff} << shift)) | (uint64_t{bits} << shift);
}

uint32_t get_half(uint64_t value, uint32_t half) {
  return half > 1 ? 0 : static_cast<uint32_t>(value >> (half * 32));
}

}  // namespace

VirtioMmioTransport::VirtioMmioTransport(GuestMemory mem, std::unique_ptr<VirtioDevice> device,
                                         EventLoop& loop)
    : mem_(mem),
      device_(std::move(device)),
      loop_(loop),
      log_("virtio-mmio device " + std::to_string(device_->device_id())) {
  const uint16_t count = device_->queue_count();
  queues_.resize(count);
  for (auto& q : queues_) q.layout.size = device_->queue_max_size();
  for (uint16_t i = 0; i < count; ++i) {
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd) throw sys_error("virtio-mmio: notify eventfd for queue " + std::to_string(i));
    const int raw = fd.get();
    notify_fds_.push_back(std::move(fd));
    notify_handles_.push_back(loop_.add(raw, [this, i, raw] {
      uint64_t notifies = 0;
      if (::read(raw, &notifies, sizeof(notifies)) != sizeof(notifies)) return;
      on_queue_notify(i);
    }));
  }
}

VirtioMmioTransport::~VirtioMmioTransport() {
  for (auto handle : notify_handles_) loop_.remove(handle);
  loop_.run_sync([this] {
    device_->reset();
    active_ = false;
  });
}

std::vector<std::pair<uint32_t, int>> VirtioMmioTransport::queue_notify_eventfds() const {
  std::vector<std::pair<uint32_t, int>> fds;
  for (uint32_t i = 0; i < notify_fds_.size(); ++i) fds.emplace_back(i, notify_fds_[i].get());
  return fds;
}

void VirtioMmioTransport::on_queue_notify(uint16_t queue) {
  // Notifications before DRIVER_OK (or after reset) are meaningless (3.1.1).
  if (active_) device_->notify(queue);
}

void VirtioMmioTransport::mmio_read(uint64_t offset, uint8_t* data, uint32_t len) {
  std::memset(data, 0, len);
  std::lock_guard lock(mutex_);
  if (offset >= mmio::kConfig) {
    device_->read_config(offset - mmio::kConfig, std::span<uint8_t>(data, len));
    return;
  }
  // 4.2.2.2: control registers take 32-bit aligned accesses only.
  if (len != 4 || offset % 4 != 0) {
    log_.warn("ignored {}-byte read of register {:#x}", len, offset);
    return;
  }
  const uint32_t value = read_register(offset);
  std::memcpy(data, &value, sizeof(value));
}

void VirtioMmioTransport::mmio_write(uint64_t offset, const uint8_t* data, uint32_t len) {
  std::lock_guard lock(mutex_);
  if (offset >= mmio::kConfig) {
    device_->write_config(offset - mmio::kConfig, std::span<const uint8_t>(data, len), signals_);
    return;
  }
  if (len != 4 || offset % 4 != 0) {
    log_.warn("ignored {}-byte write of register {:#x}", len, offset);
    return;
  }
  uint32_t value = 0;
  std::memcpy(&value, data, sizeof(value));
  write_register(offset, value);
}

VirtioMmioTransport::QueueRegisters* VirtioMmioTransport::selected_queue() {
  return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
}

uint32_t VirtioMmioTransport::read_register(uint64_t offset) {
  const QueueRegisters* q = selected_queue();
  switch (offset) {
    case mmio::kMagicValue: return mmio::kMagic;
    case mmio::kVersionReg: return mmio::kVersion;
    case mmio::kDeviceId: return device_->device_id();
    case mmio::kVendorIdReg: return mmio::kVendorId;
    case mmio::kDeviceFeatures: return get_half(device_->device_features(), device_features_sel_);
    case mmio::kQueueNumMax: return q ? device_->queue_max_size() : 0;
    case mmio::kQueueReady: return q && q->ready ? 1 : 0;
    case mmio::kInterruptStatus: return signals_.interrupt_status();
    case mmio::kStatus: return status_ | (signals_.needs_reset_set() ? kStatusDeviceNeedsReset : 0);
    case mmio::kConfigGeneration: return signals_.config_generation();
    case mmio::kQueueNum: return q ? q->layout.size : 0;
    case mmio::kQueueDescLow: return q ? get_half(q->layout.desc, 0) : 0;
    case mmio::kQueueDescHigh: return q ? get_half(q->layout.desc, 1) : 0;
    case mmio::kQueueDriverLow: return q ? get_half(q->layout.driver, 0) : 0;
    case mmio::kQueueDriverHigh: return q ? get_half(q->layout.driver, 1) : 0;
    case mmio::kQueueDeviceLow: return q ? get_half(q->layout.device, 0) : 0;
    case mmio::kQueueDeviceHigh: return q ? get_half(q->layout.device, 1) : 0;
    default: log_.warn("read of unknown register {:#x}", offset); return 0;
  }
}

void VirtioMmioTransport::write_register(uint64_t offset, uint32_t value) {
  QueueRegisters* q = selected_queue();
  // 4.2.2.3: queue registers may change only while the queue is not ready.
  QueueRegisters* q_setup = q && !q->ready && !(status_ & kStatusDriverOk) ? q : nullptr;
  switch (offset) {
    case mmio::kDeviceFeaturesSel: device_features_sel_ = value; return;
    case mmio::kDriverFeaturesSel: driver_features_sel_ = value; return;
    case mmio::kDriverFeatures:
      // Features are fixed once FEATURES_OK was accepted (3.1.1).
      if (status_ & kStatusFeaturesOk || driver_features_sel_ > 1) {
        log_.warn("ignored DriverFeatures write (sel {}, status {:#x})", driver_features_sel_,
                  status_);
        return;
      }
      set_half(driver_features_, static_cast<Half>(driver_features_sel_), value);
      return;
    case mmio::kQueueSel: queue_sel_ = value; return;
    case mmio::kQueueNotify:
      // Same path as KVM_IOEVENTFD: the event loop picks it up.
      if (value < notify_fds_.size()) {
        const uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(notify_fds_[value].get(), &one, sizeof(one));
      } else {
        log_.warn("notify for queue {} beyond {} queues", value, notify_fds_.size());
      }
      return;
    case mmio::kInterruptAck: signals_.acknowledge(value); return;
    case mmio::kStatus: write_status(value); return;
    case mmio::kQueueReady:
      if (!q) return;
      if (value == 0) {
        q->ready = false;  // takes effect at the next activation / reset
      } else if (q_setup) {
        q->ready = true;
      }
      return;
    default: break;
  }
  if (!q_setup) {
    log_.warn("ignored write {:#x} to register {:#x}: no queue {} in setup", value, offset,
              queue_sel_);
    return;
  }
  switch (offset) {
    case mmio::kQueueNum: q_setup->layout.size = static_cast<uint16_t>(value); return;
    case mmio::kQueueDescLow: set_half(q_setup->layout.desc, Half::Low, value); return;
    case mmio::kQueueDescHigh: set_half(q_setup->layout.desc, Half::High, value); return;
    case mmio::kQueueDriverLow: set_half(q_setup->layout.driver, Half::Low, value); return;
    case mmio::kQueueDriverHigh: set_half(q_setup->layout.driver, Half::High, value); return;
    case mmio::kQueueDeviceLow: set_half(q_setup->layout.device, Half::Low, value); return;
    case mmio::kQueueDeviceHigh: set_half(q_setup->layout.device, Half::High, value); return;
    default: log_.warn("write {:#x} to unknown register {:#x}", value, offset);
  }
}

bool VirtioMmioTransport::features_acceptable(uint64_t driver_features) {
  const uint64_t offered = device_->device_features();
  if (driver_features & ~offered) {
    log_.warn("driver features {:#x} include ones not offered ({:#x})", driver_features, offered);
    return false;
  }
  // This transport has no legacy interface: VERSION_1 is mandatory (6.1).
  if (!(driver_features & feature_bit(kFeatureVersion1))) {
    log_.warn("driver did not accept VIRTIO_F_VERSION_1");
    return false;
  }
  return device_->accept_features(driver_features);
}

void VirtioMmioTransport::write_status(uint32_t value) {
  if (value == 0) {
    reset();
    return;
  }
  // 2.1.1: the driver only ever adds bits (except by writing 0).
  if (status_ & ~value) {
    log_.warn("ignored status write {:#x} clearing bits of {:#x}", value, status_);
    return;
  }
  const uint32_t added = value & ~status_;
  if (added & kStatusFeaturesOk) {
    if (!features_acceptable(driver_features_)) value &= ~kStatusFeaturesOk;
  }
  if (added & kStatusDriverOk) {
    if (!(value & kStatusFeaturesOk)) {
      log_.warn("DRIVER_OK without FEATURES_OK; device stays inactive");
      value &= ~kStatusDriverOk;
    }
  }
  status_ = value & ~kStatusDeviceNeedsReset;
  if ((added & kStatusDriverOk) && (status_ & kStatusDriverOk)) activate();
}

void VirtioMmioTransport::activate() {
  DeviceActivation activation;
  activation.memory = mem_;
  activation.features = driver_features_;
  activation.signals = &signals_;
  const bool indirect = driver_features_ & feature_bit(kFeatureRingIndirectDesc);
  const bool event_idx = driver_features_ & feature_bit(kFeatureRingEventIdx);
  for (size_t i = 0; i < queues_.size(); ++i) {
    const QueueRegisters& q = queues_[i];
    if (!q.ready) {
      activation.queues.emplace_back();
      continue;
    }
    if (auto why = check_queue_layout(mem_, q.layout, device_->queue_max_size())) {
      log_.warn("queue {}: {}; device needs reset", i, *why);
      signals_.needs_reset();
      return;
    }
    activation.queues.emplace_back(mem_, q.layout, indirect, event_idx);
  }
  loop_.run_sync([this, &activation] {
    device_->activate(std::move(activation));
    active_ = true;
    // Buffers made available before DRIVER_OK may not have been notified.
    for (size_t i = 0; i < queues_.size(); ++i) device_->notify(static_cast<uint16_t>(i));
  });
}

void VirtioMmioTransport::reset() {
  // Synchronous (4.2.2.1: the device is reset when status reads 0): after
  // this no request is in flight and guest memory is not touched.
  loop_.run_sync([this] {
    active_ = false;
    device_->reset();
  });
  status_ = 0;
  device_features_sel_ = 0;
  driver_features_sel_ = 0;
  driver_features_ = 0;
  queue_sel_ = 0;
  for (auto& q : queues_) q = QueueRegisters{{device_->queue_max_size(), 0, 0, 0}, false};
  signals_.clear();
}

void VirtioMmioTransport::quiesce() {
  loop_.run_sync([this] { device_->quiesce(); });
}

}  // namespace minivmm::virtio
