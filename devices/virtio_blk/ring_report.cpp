#include "devices/virtio_blk/ring_report.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/format.h>

namespace minivmm::virtio::blk {

namespace {

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

std::vector<RingStateSource*>& registry() {
  static std::vector<RingStateSource*> r;
  return r;
}

}  // namespace

std::string format_ring_state(size_t disk, size_t queue, const QueueRingState& s,
                              bool loop_answered) {
  return fmt::format(
      "ring disk={} queue={} ready={} avail_idx={} last_avail={} used_idx={} in_flight={} "
      "needs_reset={} io_loop={}",
      disk, queue, s.ready ? 1 : 0, s.avail_idx, s.last_avail, s.used_idx, in_flight(s),
      s.needs_reset ? 1 : 0, loop_answered ? "ok" : "unresponsive");
}

void register_ring_state_source(RingStateSource* source) {
  const std::lock_guard lock(registry_mutex());
  registry().push_back(source);
}

void unregister_ring_state_source(RingStateSource* source) {
  const std::lock_guard lock(registry_mutex());
  auto& r = registry();
  r.erase(std::remove(r.begin(), r.end(), source), r.end());
}

std::vector<std::string> registered_ring_state_lines(std::chrono::milliseconds loop_wait) {
  const std::lock_guard lock(registry_mutex());
  const auto& r = registry();
  // Shared with the loop: an answer that comes after we stopped waiting
  // still has somewhere to go.
  std::vector<std::shared_ptr<std::atomic<bool>>> answered;
  for (RingStateSource* source : r) {
    auto flag = std::make_shared<std::atomic<bool>>(false);
    answered.push_back(flag);
    try {
      source->refresh_ring_states([flag] { flag->store(true, std::memory_order_release); });
    } catch (const std::exception&) {
      // A loop that takes no more work cannot answer: reported as such.
    }
  }
  const auto all_answered = [&] {
    return std::all_of(answered.begin(), answered.end(),
                       [](const auto& f) { return f->load(std::memory_order_acquire); });
  };
  // Sleeps in short steps (clock_nanosleep, allowed for every thread under
  // the seccomp sandbox) rather than on a condition variable the loop would
  // have to signal.
  const auto deadline = std::chrono::steady_clock::now() + loop_wait;
  while (!all_answered() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::vector<std::string> lines;
  for (size_t disk = 0; disk < r.size(); ++disk) {
    const bool ok = answered[disk]->load(std::memory_order_acquire);
    const std::vector<QueueRingState> queues = r[disk]->published_ring_states();
    for (size_t q = 0; q < queues.size(); ++q) {
      lines.push_back(format_ring_state(disk, q, queues[q], ok));
    }
  }
  return lines;
}

}  // namespace minivmm::virtio::blk
