// Ring state of every virtio-blk queue, for the SIGUSR1 report: the evidence
// that tells a device which never took a request the guest published (a
// minivmm hang) from a guest that published nothing (tests/framework/vm_stall.py reads
// these lines when a VM test times out).
//
// Each device publishes its own counters from its loop thread once per batch
// (never per request); the driver's avail idx is read from guest RAM when the
// report is made, so it shows what the guest published even when the loop is
// stuck. The report first asks each device's loop to publish afresh
// (EventLoop::post); a loop that does not answer in time is itself evidence
// and the lines say so (io_loop=unresponsive, counters as last published).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace minivmm::virtio::blk {

struct QueueRingState {
  bool ready = false;        // the driver set the queue up and the device is live
  uint16_t avail_idx = 0;    // the driver's avail idx in guest RAM, read now
  uint16_t last_avail = 0;   // the next avail index the device will take
  uint16_t used_idx = 0;     // the device's used idx
  bool needs_reset = false;  // the ring broke its rules: DEVICE_NEEDS_RESET (2.1.2)
};

// Chains the device took and has not returned to the used ring.
inline uint16_t in_flight(const QueueRingState& s) {
  return static_cast<uint16_t>(s.last_avail - s.used_idx);
}

// "ring disk=0 queue=0 ready=1 avail_idx=7 last_avail=7 used_idx=6 in_flight=1
// needs_reset=0 io_loop=ok"; io_loop=unresponsive when the device's loop did
// not answer the report's request (the counters are then as last published).
std::string format_ring_state(size_t disk, size_t queue, const QueueRingState& s,
                              bool loop_answered);

class RingStateSource {
 public:
  virtual ~RingStateSource() = default;
  // Any thread: each queue's state as last published, avail idx read now.
  virtual std::vector<QueueRingState> published_ring_states() const = 0;
  // Any thread: has the device's loop publish its state afresh, then call
  // `answered` (on the loop thread). Throws when the loop takes no more work.
  virtual void refresh_ring_states(std::function<void()> answered) = 0;
};

// Devices, in the order they were created (minivmm creates one per disk, in
// config order, so the position is the disk's index, as for the stats lines).
void register_ring_state_source(RingStateSource* source);
void unregister_ring_state_source(RingStateSource* source);

// Any thread: asks every registered device for fresh state, waits up to
// `loop_wait` for the answers, and returns one format_ring_state() line per
// queue. Holds the registry's lock throughout (a device unregisters before
// it goes, so it waits at most `loop_wait` more).
std::vector<std::string> registered_ring_state_lines(std::chrono::milliseconds loop_wait);

}  // namespace minivmm::virtio::blk
