// libFuzzer target: the whole device path a guest reaches, virtio-mmio
// transport + VirtioBlk over a FakeDisk, driven by a hostile driver through
// register writes, ring and descriptor updates, guest-memory changes between
// notifies, held completions and resets (input language: device_fuzz_input.h).
// After every input: nothing outside the image was asked of the disk, no
// more requests are in flight than the queues hold (a republished head is
// not a new request), and the device comes down without hanging; ASan/UBSan
// check the rest.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>

#include <spdlog/spdlog.h>

#include "common/event_loop.h"
#include "devices/virtio/virtio_constants.h"
#include "devices/virtio_blk/make_virtio_blk.h"
#include "devices/virtio_blk/virtio_blk_spec.h"
#include "tests/devices/virtio/virtio_driver_harness.h"
#include "tests/devices/virtio_blk/fake_disk.h"
#include "tests/fuzz/device_fuzz_input.h"

namespace {

using minivmm::EventLoop;
using minivmm::fuzz::DeviceOp;
using minivmm::virtio::testing::Buffer;
using minivmm::virtio::testing::FakeDisk;
using minivmm::virtio::testing::GuestRam;
using minivmm::virtio::testing::VirtioDriverHarness;
namespace blk = minivmm::virtio::blk;

constexpr uint16_t kQueueSize = 16;
constexpr uint64_t kScratchSize = 64 << 10;
constexpr uint64_t kSlotSize = 8 << 10;  // one AddRequest's header, status and data

struct Reader {
  const uint8_t* p;
  size_t n;
  bool empty() const { return n == 0; }
  template <typename T>
  T get() {
    T v{};
    const size_t k = n < sizeof(T) ? n : sizeof(T);
    std::memcpy(&v, p, k);
    p += k;
    n -= k;
    return v;
  }
};

void check(bool ok) {
  if (!ok) std::abort();
}

// Caller-pumped: the fuzzer's thread is the device's loop thread, so an input
// runs deterministically and each step costs no thread hand-off (the
// threaded loop gave ~1,000 executions/s; concurrency is the TSan build's
// job). The device runs when the input says Settle (and at the end), so the
// fuzzer also chooses what the driver changes between a notify and the
// device seeing it, and how many notifies coalesce.
EventLoop& shared_loop() {
  static EventLoop loop("fuzz-loop", EventLoop::Threading::CallerPumped);
  return loop;
}

class Session {
 public:
  Session(Reader& in, GuestRam& ram) : in_(in), ram_(ram) {
    const uint8_t flags = in_.get<uint8_t>();
    feature_mask_ = in_.get<uint64_t>();
    queues_ = (flags & 16) ? 2 : 1;
    FakeDisk::Options o;
    o.size = 64 << 10;
    o.read_only = flags & 1;
    o.mode = static_cast<minivmm::storage::CacheMode>(((flags >> 1) & 7) % 5);
    auto d = std::make_unique<FakeDisk>(o);
    disk_ = d.get();
    transport_ = blk::make_virtio_blk_mmio(ram_.memory(), std::move(d),
                                           {"fuzz", queues_, kQueueSize}, shared_loop());
    driver_ =
        std::make_unique<VirtioDriverHarness>(*transport_, ram_, transport_->irq_eventfd(),
                                              shared_loop(), transport_->queue_notify_eventfds());
    scratch_ = ram_.alloc(kScratchSize, 4096);
    bring_up();
  }

  ~Session() {
    driver_->settle();
    shared_loop().run_sync([this] {
      check(disk_->out_of_range == 0);
      check(disk_->in_flight() <= size_t{kQueueSize} * queues_);
    });
    transport_.reset();  // device reset + drain: must return
  }

  void run() {
    while (!in_.empty())
      step(static_cast<DeviceOp>(in_.get<uint8_t>() % uint8_t(DeviceOp::kCount)));
  }

 private:
  void bring_up() {
    const uint64_t features = driver_->device_features() & feature_mask_;
    if (!driver_->negotiate(features)) return;
    for (uint32_t q = 0; q < queues_; ++q)
      driver_->setup_queue(static_cast<uint16_t>(q), kQueueSize);
    driver_->driver_ok();
  }

  uint16_t queue() { return in_.get<uint8_t>() % queues_; }

  void add_request() {
    const uint16_t q = queue();
    static constexpr uint32_t kTypes[] = {blk::kTypeIn,    blk::kTypeOut,     blk::kTypeFlush,
                                          blk::kTypeGetId, blk::kTypeDiscard, blk::kTypeWriteZeroes,
                                          0x7fff};
    const uint32_t type = kTypes[in_.get<uint8_t>() % std::size(kTypes)];
    const uint64_t sector = in_.get<uint16_t>() % 160;  // around the 128-sector disk's end
    const uint32_t len = (in_.get<uint8_t>() % 9) * 512;
    const uint8_t framing = in_.get<uint8_t>();
    const uint64_t slot = scratch_ + (next_slot_++ % (kScratchSize / kSlotSize)) * kSlotSize;
    std::memcpy(ram_.host(slot), &type, 4);
    std::memcpy(ram_.host(slot + 8), &sector, 8);
    std::vector<Buffer> bufs{{slot, 16, false}};
    const bool writable = (type == blk::kTypeIn || type == blk::kTypeGetId) != bool(framing & 2);
    if (len) bufs.push_back({slot + 512, len, writable});
    if (!(framing & 4)) bufs.push_back({slot + 16, 1, true});  // else: no status byte
    driver_->add_chain(q, bufs, framing & 1);
    driver_->notify(q);
  }

  void write_descriptor() {
    const uint16_t q = queue();
    const uint16_t index = in_.get<uint8_t>() % kQueueSize;
    const uint64_t addr =
        in_.get<uint8_t>() ? in_.get<uint64_t>() : scratch_ + in_.get<uint16_t>() % kScratchSize;
    const uint32_t len = in_.get<uint32_t>();
    const uint16_t flags = in_.get<uint8_t>() & 7;
    const uint16_t next = in_.get<uint8_t>() % (kQueueSize + 2);
    driver_->write_descriptor(q, index, addr, len, flags, next);
  }

  void poke_memory() {
    const uint64_t off = in_.get<uint16_t>() % kScratchSize;
    const size_t len = std::min<size_t>(in_.get<uint8_t>(), kScratchSize - off);
    for (size_t i = 0; i < len; ++i) *ram_.host(scratch_ + off + i) = in_.get<uint8_t>();
  }

  void step(DeviceOp op) {
    switch (op) {
      case DeviceOp::WriteRegister: {
        const uint64_t offset = (in_.get<uint8_t>() % 64) * 4UL;
        driver_->write32(offset, in_.get<uint32_t>());
        break;
      }
      case DeviceOp::ReadRegister: driver_->read32((in_.get<uint8_t>() % 64) * 4UL); break;
      case DeviceOp::PokeMemory: poke_memory(); break;
      case DeviceOp::WriteDescriptor: write_descriptor(); break;
      case DeviceOp::PublishHead: {
        const uint16_t q = queue();
        driver_->publish_head(q, in_.get<uint8_t>() % (kQueueSize + 2));
        driver_->notify(q);
        break;
      }
      case DeviceOp::AddRequest: add_request(); break;
      case DeviceOp::HoldDisk: shared_loop().run_sync([this] { disk_->hold = true; }); break;
      case DeviceOp::ReleaseDisk: shared_loop().run_sync([this] { disk_->release(); }); break;
      case DeviceOp::WriteConfig: {
        const uint8_t offset = in_.get<uint8_t>() % 64;
        driver_->write_config8(offset, in_.get<uint8_t>());
        break;
      }
      case DeviceOp::Settle: driver_->settle(); break;
      case DeviceOp::Reset:
        driver_->reset();
        bring_up();
        break;
      case DeviceOp::ReadConfig: driver_->read_config32(in_.get<uint8_t>() % 64); break;
      case DeviceOp::kCount: break;
    }
  }

  Reader& in_;
  GuestRam& ram_;
  uint64_t feature_mask_ = 0;
  uint32_t queues_ = 1;
  FakeDisk* disk_ = nullptr;
  std::unique_ptr<minivmm::virtio::VirtioMmioTransport> transport_;
  std::unique_ptr<VirtioDriverHarness> driver_;
  uint64_t scratch_ = 0;
  uint64_t next_slot_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  Reader in{data, size};
  // Outlives the device (in-flight requests point into it); one for the whole
  // run, cleared per input (a fresh one per input spends time in page faults).
  static GuestRam ram(256 << 10);
  ram.clear();
  try {
    Session session(in, ram);
    try {
      session.run();
    } catch (const std::runtime_error&) {
      // The harness ran out of test RAM or queue state (harness limits,
      // not findings); the session still comes down and is checked.
    } catch (const std::out_of_range&) {
    }
  } catch (const std::runtime_error&) {
  } catch (const std::out_of_range&) {
  }
  return 0;
}
