// virtio-blk (virtio 1.x 5.2) over a storage::Disk. Requests go to the disk
// asynchronously: every chain popped on a notify is submitted, then one
// kick(); the disk's completion fd is polled by the EventLoop, and the
// completion callbacks write the status byte, fill the used ring and raise
// the interrupt. The write-cache state shown to the guest (FLUSH,
// CONFIG_WCE, the writeback byte) always comes from the Disk
// (docs/cache-modes.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/event_loop.h"
#include "devices/virtio/rate_limited_log.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio_blk/blk_request.h"
#include "devices/virtio_blk/disk_flush.h"
#include "devices/virtio_blk/ring_report.h"
#include "devices/virtio_blk/virtio_blk_config_space.h"
#include "devices/virtio_blk/virtio_blk_options.h"
#include "storage/disk.h"

namespace minivmm::virtio::blk {

class VirtioBlk : public VirtioDevice, public RingStateSource {
 public:
  // Throws minivmm::Error for invalid `options`.
  VirtioBlk(std::unique_ptr<storage::Disk> disk, VirtioBlkOptions options, EventLoop& loop);
  ~VirtioBlk() override;
  VirtioBlk(const VirtioBlk&) = delete;
  VirtioBlk& operator=(const VirtioBlk&) = delete;

  uint32_t device_id() const override;
  uint64_t device_features() const override { return offered_features_; }
  uint16_t queue_count() const override { return static_cast<uint16_t>(options_.num_queues); }
  uint16_t queue_max_size() const override { return options_.queue_size; }

  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void write_config(uint64_t offset, std::span<const uint8_t> data,
                    TransportSignals& signals) override;
  bool accept_features(uint64_t negotiated) override;

  void activate(DeviceActivation activation) override;
  void notify(uint16_t queue) override;
  void reset() override;
  void quiesce() override;

  // The control API's FlushDisks (host_flush.h), loop thread. While intake
  // is stopped no chain is taken from the avail rings; resume_intake()
  // takes what the guest published meanwhile (its notify may be gone).
  void stop_intake() { intake_stopped_ = true; }
  void resume_intake();
  // Every request in flight completes and is answered, then a flush that
  // reaches the host in every mode; never throws.
  DiskFlushReport flush_to_host();

  // RingStateSource (the SIGUSR1 ring lines).
  std::vector<QueueRingState> published_ring_states() const override;
  void refresh_ring_states(std::function<void()> answered) override;

 private:
  ConfigSpace config_space() const;  // loop thread
  void process_queue(uint16_t queue);
  // What the device answers a request: the status byte's value and the
  // used-ring length (2.7.8).
  struct Answer {
    uint8_t code = 0;
    uint32_t used_len = 1;
  };
  void complete(uint16_t queue, uint16_t head, uint8_t* status, Answer answer);
  void on_disk_completions();
  // EventLoop::Poller: new chains on any queue, disk completions.
  bool poll();
  void set_polling(bool polling);
  void signal_used();
  // Loop thread, once per batch (after signal_used): the ring state that
  // published_ring_states() reports.
  void publish_ring_state();
  // One request per head, per queue (kvmtool's reqs[head]): the chain is
  // parsed into the slot its head names, which keeps the parsed request
  // (status byte, used length, the iovecs DiskRequest::iov points at) until
  // the disk is done, so the disk callback captures only {this, key}
  // (std::function's inline storage: no allocation per request).
  struct Slot {
    BlkRequest request;
    uint32_t generation = 0;  // low bits of generation_ at submit
    // With the disk. A head published again before it was used is ring
    // corruption (2.7.13), not a new request: this bounds requests in
    // flight to the queue size.
    bool in_flight = false;
  };
  // The callback's key: {generation, queue, head} in one word (a type of
  // its own, so it cannot be mistaken for the result beside it).
  enum class SlotKey : uint64_t {};
  static SlotKey slot_key(uint32_t generation, uint16_t queue, uint16_t head);
  // True when the request went to the disk (a kick() is due).
  bool start(uint16_t queue, uint16_t head, Slot& slot);
  void on_disk_done(SlotKey key, int result);
  // Hands `r` to the disk; a disk that throws fails the request (IOERR)
  // instead of leaving it counted as live, so a reset's drain ends.
  bool submit_to_disk(uint16_t queue, uint16_t head, Slot& slot);
  void kick_disk();

  std::unique_ptr<storage::Disk> disk_;
  VirtioBlkOptions options_;
  EventLoop& loop_;
  uint64_t offered_features_ = 0;
  bool original_write_cache_ = false;             // restored at reset, as QEMU does
  std::atomic<uint64_t> negotiated_features_{0};  // set at FEATURES_OK (vCPU thread)
  RateLimitedLog log_;

  // Event-loop thread only.
  bool active_ = false;
  bool intake_stopped_ = false;  // FlushDisks in progress
  uint64_t generation_ = 0;      // completions of an older generation are dropped
  GuestMemory memory_;
  std::vector<SplitQueue> queues_;
  std::vector<bool> used_pending_;  // queue got used entries since the last signal
  TransportSignals* signals_ = nullptr;
  RequestLimits limits_;
  EventLoop::Handle completion_handle_ = 0;
  EventLoop::Handle poller_handle_ = 0;
  DescriptorChain chain_;  // reused by process_queue
  // Per queue, by head: options_.queue_size each, made by the constructor.
  std::vector<std::vector<Slot>> slots_;

  // Written by the loop thread (publish_ring_state), read by any thread.
  // avail_idx points into guest RAM (null while the queue is not live).
  struct PublishedQueue {
    std::atomic<uint16_t*> avail_idx{nullptr};
    std::atomic<uint16_t> last_avail{0};
    std::atomic<uint16_t> used_idx{0};
    std::atomic<bool> needs_reset{false};
  };
  std::unique_ptr<PublishedQueue[]> published_;  // options_.num_queues entries
};

}  // namespace minivmm::virtio::blk
