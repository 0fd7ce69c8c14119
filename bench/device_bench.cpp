// The whole device path under load: a host-side virtio driver (the test
// harness, standing in for Linux's virtio-blk) puts 4 KiB requests on a split
// virtqueue, notifies the virtio-mmio transport, and VirtioBlk serves them
// from a real storage::Disk on a file, for each cache mode. Same cases, file,
// offsets and peers as storage_bench: every row is compared with
// `qemu-img bench` on the same file in the same run, and with fio (io_uring,
// the same O_DIRECT setting) as the ceiling.
//
// The driver does what Linux's does on the hot path and nothing more: fixed
// descriptor chains per slot (header, data, status) rewritten in place, one
// notify per batch and only when the device asks for it (EVENT_IDX avail
// event), and it sleeps on the irq eventfd only after re-arming used_event
// (virtio 1.x 2.7.10). Before sleeping it polls the irq eventfd for up to
// --driver-halt-poll-us (default 200), as KVM does for a halted vCPU.
// --same-thread removes the device thread: the driver polls the device
// itself, which measures the device code without the hand-off between CPUs.
#include <poll.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_options.h"
#include "bench/bench_peers.h"
#include "common/error.h"
#include "common/poll_window.h"
#include "devices/virtio/split_queue.h"
#include "devices/virtio/virtio_constants.h"
#include "devices/virtio_blk/make_virtio_blk.h"
#include "devices/virtio_blk/virtio_blk_spec.h"
#include "storage/disk.h"
#include "tests/devices/virtio/virtio_driver_harness.h"

namespace minivmm::virtio::blk {
namespace {

using bench::Case;
using bench::kBlock;
using bench::kStep;
using bench::Result;
using Clock = std::chrono::steady_clock;
using storage::CacheMode;
using testing::GuestRam;
using testing::VirtioDriverHarness;

constexpr uint16_t kQueueSize = 256;
constexpr uint8_t kStatusPending = 0xff;

using bench::Options;

// One virtio-blk device over a real disk, driven from this thread.
class DeviceUnderLoad {
 public:
  DeviceUnderLoad(const Options& o, CacheMode mode, unsigned depth)
      : depth_(depth),
        driver_poll_(o.driver_poll || o.same_thread),
        same_thread_(o.same_thread),
        halt_poll_(std::chrono::microseconds(o.driver_halt_poll_us)),
        loop_("device-bench",
              o.same_thread ? EventLoop::Threading::CallerPumped : EventLoop::Threading::OwnThread,
              std::chrono::microseconds(o.poll_max_us)) {
    storage::DiskOptions d;
    d.path = o.file;
    d.cache = mode;
    d.engine = o.engine;
    transport_ = make_virtio_blk_mmio(ram_.memory(), storage::Disk::open(d),
                                      VirtioBlkOptions{"device-bench", 1, kQueueSize}, loop_);
    driver_ = std::make_unique<VirtioDriverHarness>(*transport_, ram_, transport_->irq_eventfd(),
                                                    loop_, transport_->queue_notify_eventfds());
    if (!driver_->negotiate(driver_->device_features())) throw Error("features refused");
    if (!(driver_->device_features() & feature_bit(kFeatureRingEventIdx))) {
      throw Error("device does not offer EVENT_IDX");
    }
    driver_->setup_queue(0, kQueueSize);
    driver_->driver_ok();
    // Slot s: descriptors 3s (header), 3s+1 (data), 3s+2 (status); one more
    // slot for flushes: header and status only.
    for (unsigned s = 0; s <= depth_; ++s) {
      Slot slot;
      slot.header = ram_.alloc(16, 16);
      slot.data = ram_.alloc(kBlock, 4096);
      slot.status = ram_.alloc(1, 1);
      std::memset(ram_.host(slot.data), 0x5a, kBlock);
      slots_.push_back(slot);
    }
    const uint16_t f = depth_ * 3;
    driver_->write_descriptor(0, f, slots_[depth_].header, 16, kDescFlagNext, f + 1);
    driver_->write_descriptor(0, f + 1, slots_[depth_].status, 1, kDescFlagWrite, 0);
  }

  Result run(const Options& o, const Case& c) {
    for (unsigned s = 0; s < depth_; ++s) {
      const uint16_t d = static_cast<uint16_t>(3 * s);
      driver_->write_descriptor(0, d, slots_[s].header, 16, kDescFlagNext, d + 1);
      driver_->write_descriptor(0, d + 1, slots_[s].data, kBlock,
                                kDescFlagNext | (c.write ? 0 : kDescFlagWrite), d + 2);
      driver_->write_descriptor(0, d + 2, slots_[s].status, 1, kDescFlagWrite, 0);
    }
    std::vector<double> lat;
    lat.reserve(1 << 20);
    uint64_t completed = 0, since_flush = 0;
    unsigned in_flight = 0;
    std::vector<unsigned> free_slots;
    const auto start = Clock::now();
    const double cpu_start = bench::process_cpu_seconds();
    const double driver_cpu_start = bench::thread_cpu_seconds();
    const auto deadline = start + std::chrono::duration<double>(o.seconds);

    uint16_t batch_start = driver_->avail_idx(0);
    for (unsigned s = 0; s < depth_; ++s) issue(s, c.write, o.size);
    in_flight = depth_;
    notify_if_needed(batch_start);
    bool stop = false;
    while (in_flight > 0) {
      const auto used = wait_used();
      const auto now = Clock::now();
      for (const auto& u : used) {
        const unsigned s = u.id / 3;
        if (s >= depth_) throw Error("unexpected used id " + std::to_string(u.id));
        Slot& slot = slots_[s];
        if (*ram_.host(slot.status) != kStatusOk) {
          throw Error("request failed with status " + std::to_string(*ram_.host(slot.status)));
        }
        lat.push_back(std::chrono::duration<double, std::micro>(now - slot.issued).count());
        ++completed;
        ++since_flush;
        --in_flight;
        free_slots.push_back(s);
      }
      if (!stop && (o.requests ? completed + in_flight >= o.requests : now >= deadline)) {
        stop = true;
      }
      if (stop) continue;
      if (c.flush_every && since_flush >= c.flush_every) {
        if (in_flight > 0) continue;  // drain first, as qemu-img bench does
        flush();
        since_flush = 0;
      }
      size_t n = free_slots.size();
      if (c.flush_every) n = std::min<size_t>(n, c.flush_every - since_flush - in_flight);
      batch_start = driver_->avail_idx(0);
      for (size_t i = 0; i < n; ++i) {
        issue(free_slots.back(), c.write, o.size);
        free_slots.pop_back();
      }
      in_flight += static_cast<unsigned>(n);
      if (n) notify_if_needed(batch_start);
    }
    Result r;
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    // The device side only (its thread and io_uring's workers): the driver
    // stands for the guest. On the same thread the two cannot be told apart.
    r.cpu_seconds = bench::process_cpu_seconds() - cpu_start;
    if (!same_thread_) r.cpu_seconds -= bench::thread_cpu_seconds() - driver_cpu_start;
    r.ops = completed;
    r.p50_us = bench::percentile(lat, 0.50);
    r.p99_us = bench::percentile(lat, 0.99);
    return r;
  }

 private:
  struct Slot {
    uint64_t header = 0, data = 0, status = 0;
    Clock::time_point issued;
  };

  void write_header(const Slot& slot, uint32_t type, uint64_t sector) {
    std::memcpy(ram_.host(slot.header), &type, 4);
    std::memcpy(ram_.host(slot.header + 8), &sector, 8);
    *ram_.host(slot.status) = kStatusPending;
  }

  void issue(unsigned s, bool write, uint64_t size) {
    Slot& slot = slots_[s];
    write_header(slot, write ? kTypeOut : kTypeIn, offset_ / kSectorSize);
    offset_ = (offset_ + kStep) % size;
    slot.issued = Clock::now();
    driver_->publish_head(0, static_cast<uint16_t>(3 * s));
  }

  // 2.7.10 (EVENT_IDX): notify only when the new avail idx passed the
  // device's avail_event; the full fence orders our idx store before its load.
  void notify_if_needed(uint16_t old_idx) {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const uint16_t new_idx = driver_->avail_idx(0);
    if (vring_need_event(driver_->avail_event(0), new_idx, old_idx)) {
      driver_->notify(0);
    }
  }

  // Everything the device has used since the last call; sleeps on the irq
  // eventfd only after asking for an interrupt at the next used entry.
  // A polling driver never re-arms used_event, so the device raises no
  // interrupts; it spins on the used idx instead. With --same-thread each
  // spin first lets the device poll its queue and its disk's completions.
  std::vector<testing::UsedElement> wait_used() {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    for (uint64_t spins = 0;; ++spins) {
      if (same_thread_) loop_.poll_once();
      const uint16_t idx = driver_->used_idx(0);
      if (idx != last_used_) {
        auto used = driver_->wait_used(0, static_cast<uint16_t>(idx - last_used_),
                                       std::chrono::milliseconds(0));
        last_used_ = static_cast<uint16_t>(last_used_ + used.size());
        return used;
      }
      if (driver_poll_) {
        if (spins % 4096 == 0 && Clock::now() > deadline) throw Error("nothing used within 10 s");
        continue;
      }
      driver_->set_used_event(0, last_used_);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (driver_->used_idx(0) != last_used_) continue;
      wait_interrupt();
      driver_->interrupts();  // reads the eventfd, acknowledges InterruptStatus
    }
  }

  // A halted vCPU under KVM halt polling: it polls for a pending interrupt
  // (here: the irq eventfd, as an irqfd is one) for up to the window before
  // its thread sleeps, and the window grows and shrinks as KVM's does.
  void wait_interrupt() {
    pollfd p{transport_->irq_eventfd(), POLLIN, 0};
    halt_poll_.poll_then_sleep([&] { return ::poll(&p, 1, 0) == 1; },
                               [&] {
                                 if (::poll(&p, 1, 10000) != 1) {
                                   throw Error("no interrupt within 10 s");
                                 }
                               });
  }

  void flush() {
    Slot& slot = slots_[depth_];
    write_header(slot, kTypeFlush, 0);
    const uint16_t batch_start = driver_->avail_idx(0);
    driver_->publish_head(0, static_cast<uint16_t>(3 * depth_));
    notify_if_needed(batch_start);
    const auto used = wait_used();
    if (used.size() != 1 || used[0].id != 3 * depth_ || *ram_.host(slot.status) != kStatusOk) {
      throw Error("flush did not complete cleanly");
    }
  }

  unsigned depth_;
  bool driver_poll_;
  bool same_thread_;
  PollWindow halt_poll_;
  // Destroyed last: the transport and the device run on it.
  EventLoop loop_;
  GuestRam ram_{4 << 20};
  std::unique_ptr<VirtioMmioTransport> transport_;
  std::unique_ptr<VirtioDriverHarness> driver_;
  std::vector<Slot> slots_;
  uint64_t offset_ = 0;
  uint16_t last_used_ = 0;
};

int run(int argc, char** argv) {
  const Options o = bench::parse_options(argc, argv, "/var/tmp/minivmm-device-bench.img", true);
  spdlog::set_level(spdlog::level::warn);
  bench::create_image(o.file, o.size);
  const std::vector<Case> cases = bench::standard_cases(o.flush_every);
  std::printf(
      "device path: harness driver -> virtqueue (%u entries, EVENT_IDX) -> VirtioBlk -> "
      "Disk; file %s, %llu MiB, 4 KiB requests at (k * %llu) mod size, %.1f s per run, "
      "%u run(s) per program per row, alternating (medians shown)\n",
      kQueueSize, o.file.c_str(), static_cast<unsigned long long>(o.size >> 20),
      static_cast<unsigned long long>(kStep), o.seconds, o.rounds);
  // The ceiling first, so every row can show its ratio to it.
  std::vector<Result> fio_buffered, fio_direct;
  if (o.peers) {
    for (const Case& c : cases) {
      fio_buffered.push_back(bench::run_fio(o.file, o.size, o.seconds, c, false));
      fio_direct.push_back(bench::run_fio(o.file, o.size, o.seconds, c, true));
    }
  }
  const std::string driver =
      o.same_thread   ? "polls the used ring and serves the device on its own thread (no device "
                        "thread, no hand-off between CPUs)"
      : o.driver_poll ? "polls the used ring (no interrupts)"
                      : "sleeps on the interrupt (irq eventfd) after polling for it up to " +
                            std::to_string(o.driver_halt_poll_us) + " us (KVM halt polling)";
  std::printf("driver: %s; device loop polls up to %u us before sleeping\n", driver.c_str(),
              o.poll_max_us);
  std::printf("vs fio: fio io_uring with the mode's O_DIRECT setting, no per-write sync\n");
  std::printf("CPU us/IO: %s; qemu-img's: the whole process\n\n",
              o.same_thread ? "the driver's thread, device included"
                            : "the device side, not the driver");
  bench::print_table_header(true);
  for (CacheMode mode : {CacheMode::Writeback, CacheMode::None, CacheMode::Writethrough,
                         CacheMode::Directsync, CacheMode::Unsafe}) {
    if (!o.only_mode.empty() && o.only_mode != storage::to_string(mode)) continue;
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      const bench::Row row = bench::run_row(o.file, o.size, mode, c, o.rounds, o.peers, [&] {
        DeviceUnderLoad device(o, mode, c.depth);  // closed (unlocked) before qemu-img runs
        return device.run(o, c);
      });
      std::optional<double> fio;
      if (o.peers) {
        const Result& f = storage::traits(mode).direct ? fio_direct[i] : fio_buffered[i];
        fio = f.iops();
      }
      bench::print_row("device " + std::string(storage::to_string(mode)), c, row.ours, row.qemu,
                       fio, true);
    }
  }
  if (o.peers) {
    for (size_t i = 0; i < cases.size(); ++i) {
      bench::print_row("fio buffered", cases[i], fio_buffered[i], std::nullopt, std::nullopt, true);
    }
    for (size_t i = 0; i < cases.size(); ++i) {
      bench::print_row("fio direct=1", cases[i], fio_direct[i], std::nullopt, std::nullopt, true);
    }
  }
  ::unlink(o.file.c_str());
  return 0;
}

}  // namespace
}  // namespace minivmm::virtio::blk

int main(int argc, char** argv) {
  try {
    return minivmm::virtio::blk::run(argc, argv);
  } catch (const std::exception& e) {
    spdlog::error("device_bench: {}", e.what());
    return 1;
  }
}
