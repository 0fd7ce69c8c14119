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
#include "common/slot_pool.h"
#include "devices/virtio/rate_limited_log.h"
#include "devices/virtio/virtio_device.h"
#include "devices/virtio_blk/blk_request.h"
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

  // RingStateSource (the SIGUSR1 ring lines).
  std::vector<QueueRingState> published_ring_states() const override;
  void refresh_ring_states(std::function<void()> answered) override;

 private:
  ConfigSpace config_space() const;  // loop thread
  void process_queue(uint16_t queue);
  // True when the request went to the disk (a kick() is due).
  bool start(uint16_t queue, uint16_t head, BlkRequest& request);
  void complete(uint16_t queue, uint16_t head, uint8_t* status, uint8_t code, uint32_t len);
  void on_disk_completions();
  // EventLoop::Poller: new chains on any queue, disk completions.
  bool poll();
  void set_polling(bool polling);
  void signal_used();
  // Loop thread, once per batch (after signal_used): the ring state that
  // published_ring_states() reports.
  void publish_ring_state();
  // What a request's completion needs, kept in a reused slot so the disk
  // callback captures only {this, slot} (fits std::function's inline
  // storage: no allocation per request). The slot also owns the request's
  // iovec array, which DiskRequest::iov points at until the disk is done;
  // it is swapped with parsed_.data, so capacity circulates and nothing is
  // allocated per request once every slot has grown.
  struct InFlight {
    uint64_t generation = 0;
    uint8_t* status = nullptr;
    uint32_t used_len = 0;
    uint16_t queue = 0;
    uint16_t head = 0;
    std::vector<iovec> iov;
  };
  void on_disk_done(uint64_t slot, int result);
  // Hands `r` to the disk; a disk that throws fails the request (IOERR)
  // instead of leaving it counted as live, so a reset's drain ends.
  bool submit_to_disk(uint16_t queue, uint16_t head, BlkRequest& r);
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
  uint64_t generation_ = 0;  // completions of an older generation are dropped
  GuestMemory memory_;
  std::vector<SplitQueue> queues_;
  std::vector<bool> used_pending_;  // queue got used entries since the last signal
  TransportSignals* signals_ = nullptr;
  RequestLimits limits_;
  EventLoop::Handle completion_handle_ = 0;
  EventLoop::Handle poller_handle_ = 0;
  DescriptorChain chain_;  // reused by process_queue
  BlkRequest parsed_;      // reused by process_queue
  SlotPool<InFlight> in_flight_;
  // Per queue, per head: the chain is with the disk. A head published again
  // before it was used is ring corruption (2.7.13), not a new request: this
  // bounds requests in flight to the queue size.
  std::vector<std::vector<bool>> head_in_flight_;

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
