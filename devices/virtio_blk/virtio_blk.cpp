#include "devices/virtio_blk/virtio_blk.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "devices/virtio/virtio_constants.h"
#include "devices/virtio_blk/virtio_blk_spec.h"

namespace minivmm::virtio::blk {

namespace {

constexpr uint32_t kSizeMax = 1u << 20;            // largest single segment we advertise
constexpr uint32_t kMaxDiscardSectors = 1u << 22;  // 2 GiB per request
constexpr uint32_t kMaxWriteZeroesSectors = 1u << 22;

void validate(const storage::Disk* disk, const VirtioBlkOptions& c) {
  if (!disk) throw Error("virtio-blk: no disk");
  if (c.id.size() > kMaxIdBytes) {
    throw Error("virtio-blk: ID '" + c.id + "' is longer than " + std::to_string(kMaxIdBytes) +
                " bytes");
  }
  if (c.num_queues == 0 || c.num_queues > kMaxQueues) {
    throw Error(log_name(c, disk->path()) + ": num_queues " + std::to_string(c.num_queues) +
                " not in 1.." + std::to_string(kMaxQueues));
  }
  if (!std::has_single_bit(c.queue_size) || c.queue_size < kMinQueueSize ||
      c.queue_size > kMaxBlkQueueSize) {
    throw Error(log_name(c, disk->path()) + ": queue_size " + std::to_string(c.queue_size) +
                " is not a power of two in " + std::to_string(kMinQueueSize) + ".." +
                std::to_string(kMaxBlkQueueSize));
  }
  if (disk->logical_block_size() < kSectorSize || disk->logical_block_size() % kSectorSize) {
    throw Error(log_name(c, disk->path()) + ": logical block size " +
                std::to_string(disk->logical_block_size()) + " is not a multiple of 512");
  }
}

uint64_t offered_features(const storage::Disk& disk, const VirtioBlkOptions& c) {
  uint64_t f = feature_bit(kFeatureVersion1) | feature_bit(kFeatureRingIndirectDesc) |
               feature_bit(kFeatureRingEventIdx) | feature_bit(kFeatureSizeMax) |
               feature_bit(kFeatureSegMax) | feature_bit(kFeatureBlkSize);
  // cache-modes.md: FLUSH and CONFIG_WCE always; `writeback` says which
  // mode is current and the guest may switch it.
  f |= feature_bit(kFeatureFlush) | feature_bit(kFeatureConfigWce);
  if (disk.read_only()) {
    f |= feature_bit(kFeatureRo);
  } else {
    f |= feature_bit(kFeatureDiscard) | feature_bit(kFeatureWriteZeroes);
  }
  if (c.num_queues > 1) f |= feature_bit(kFeatureMq);
  return f;
}

}  // namespace

VirtioBlk::VirtioBlk(std::unique_ptr<storage::Disk> disk, VirtioBlkOptions options, EventLoop& loop)
    : disk_(std::move(disk)),
      options_(std::move(options)),
      loop_(loop),
      log_(log_name(options_, disk_ ? disk_->path() : std::string())) {
  validate(disk_.get(), options_);
  offered_features_ = offered_features(*disk_, options_);
  published_ = std::make_unique<PublishedQueue[]>(options_.num_queues);
  // Every slot up front, here on the thread that builds the machine: the
  // loop thread never frees them until the device goes, and then into this
  // thread's malloc arena, whose trim is a brk; a loop-thread arena that
  // shrank would read /proc/sys/vm/overcommit_memory (glibc), an open the
  // io-loop sandbox forbids. A negotiated queue is never larger.
  slots_.resize(options_.num_queues);
  for (std::vector<Slot>& queue_slots : slots_) {
    queue_slots.resize(options_.queue_size);
    // Room for header, data and status: the common chain never allocates.
    for (Slot& slot : queue_slots) slot.request.buffers.reserve(4);
  }
  loop_.run_sync([this] { original_write_cache_ = disk_->write_cache_enabled(); });
  completion_handle_ = loop_.add(disk_->completion_fd(), [this] { on_disk_completions(); });
  poller_handle_ =
      loop_.add_poller({[this] { return poll(); }, [this](bool polling) { set_polling(polling); }});
  register_ring_state_source(this);
}

VirtioBlk::~VirtioBlk() {
  // First: after this no report posts a refresh, and one posted before runs
  // ahead of the reset below (the loop runs posted tasks in order).
  unregister_ring_state_source(this);
  loop_.remove_poller(poller_handle_);
  loop_.run_sync([this] { reset(); });
  loop_.remove(completion_handle_);
}

uint32_t VirtioBlk::device_id() const { return kDeviceId; }

ConfigSpace VirtioBlk::config_space() const {
  ConfigSpace c;
  c.capacity = disk_->size_bytes() / kSectorSize;
  c.size_max = kSizeMax;
  c.seg_max = options_.queue_size - 2;  // header and status take two descriptors
  c.blk_size = disk_->logical_block_size();
  c.writeback = disk_->write_cache_enabled() ? 1 : 0;
  c.num_queues = static_cast<uint16_t>(options_.num_queues);
  c.max_discard_sectors = kMaxDiscardSectors;
  c.max_discard_seg = 1;
  c.discard_sector_alignment = disk_->logical_block_size() / kSectorSize;
  c.max_write_zeroes_sectors = kMaxWriteZeroesSectors;
  c.max_write_zeroes_seg = 1;
  c.write_zeroes_may_unmap = 1;
  return c;
}

void VirtioBlk::read_config(uint64_t offset, std::span<uint8_t> data) {
  ConfigSpace c;
  loop_.run_sync([&] { c = config_space(); });  // the Disk belongs to the loop thread
  const auto* bytes = reinterpret_cast<const uint8_t*>(&c);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < sizeof(c) ? bytes[offset + i] : 0;
  }
}

void VirtioBlk::write_config(uint64_t offset, std::span<const uint8_t> data,
                             TransportSignals& signals) {
  // 5.2.4: only `writeback` is writable, and only with CONFIG_WCE.
  if (offset != kWritebackOffset || data.size() != 1) {
    log_.warn("ignored {}-byte config write at offset {}", data.size(), offset);
    return;
  }
  if (!(negotiated_features_.load() & feature_bit(kFeatureConfigWce))) {
    log_.warn("ignored writeback write: CONFIG_WCE not negotiated");
    return;
  }
  const bool enable = data[0] != 0;
  loop_.run_sync([&] {
    if (disk_->write_cache_enabled() == enable) return;
    disk_->set_write_cache(enable);
    signals.bump_config_generation();
  });
}

bool VirtioBlk::accept_features(uint64_t negotiated) {
  negotiated_features_.store(negotiated);
  // cache-modes.md: a guest that can neither flush nor see the cache mode
  // must get write-through semantics, whatever the configured mode.
  if (!(negotiated & (feature_bit(kFeatureFlush) | feature_bit(kFeatureConfigWce)))) {
    loop_.run_sync([this] { disk_->set_write_cache(false); });
  }
  return true;
}

void VirtioBlk::activate(DeviceActivation activation) {
  const uint64_t f = activation.features;
  limits_ = RequestLimits{
      .image = {.size_bytes = disk_->size_bytes(),
                .block_size = disk_->logical_block_size(),
                .read_only = disk_->read_only()},
      .discard = (f & feature_bit(kFeatureDiscard)) != 0,
      .write_zeroes = (f & feature_bit(kFeatureWriteZeroes)) != 0,
      .max_discard_sectors = kMaxDiscardSectors,
      .max_write_zeroes_sectors = kMaxWriteZeroesSectors,
      .size_max = kSizeMax,
  };
  memory_ = activation.memory;
  queues_ = std::move(activation.queues);
  used_pending_.assign(queues_.size(), false);
  for (std::vector<Slot>& queue_slots : slots_) {
    for (Slot& slot : queue_slots) slot.in_flight = false;
  }
  signals_ = activation.signals;
  active_ = true;
  publish_ring_state();
}

void VirtioBlk::notify(uint16_t queue) {
  if (!active_ || queue >= queues_.size()) return;
  process_queue(queue);
}

void VirtioBlk::process_queue(uint16_t queue) {
  SplitQueue& q = queues_[queue];
  if (!q.ready() || intake_stopped_) return;
  bool submitted = false;
  while (q.pop_into(chain_)) {
    Slot& slot = slots_[queue][chain_.head];  // pop_into checked head < size
    if (slot.in_flight) {
      q.mark_broken("head " + std::to_string(chain_.head) + " made available while in flight");
      break;
    }
    parse_blk_request_into(memory_, chain_, limits_, slot.request);
    submitted |= start(queue, chain_.head, slot);
  }
  if (q.broken()) {
    log_.warn("queue {}: ring corrupt ({}); device needs reset", queue, q.broken_reason());
    signals_->needs_reset();
  }
  if (submitted) kick_disk();  // one batch per notify
  // Requests the page cache served inline in kick() are complete already:
  // answer them in this pass rather than after another epoll round.
  if (submitted && disk_->completions_ready()) disk_->process_completions();
  signal_used();
}

void VirtioBlk::kick_disk() {
  try {
    disk_->kick();
  } catch (const std::exception& e) {
    // The Disk fails what it could not submit; nothing more to do here.
    log_.warn("disk kick failed: {}", e.what());
  }
}

bool VirtioBlk::start(uint16_t queue, uint16_t head, Slot& slot) {
  const BlkRequest& r = slot.request;
  using Disposition = BlkRequest::Disposition;
  switch (r.disposition) {
    case Disposition::NoStatus:
      // A used entry without a status byte reads as success to Linux (a
      // stale 0): stop the queue and ask for a reset instead (2.1.2).
      queues_[queue].mark_broken("head " + std::to_string(head) + ": " + std::string(r.why));
      return false;
    case Disposition::Invalid:
      log_.warn("queue {} head {}: {}", queue, head, r.why);
      complete(queue, head, r.status, {kStatusIoErr, 1});
      return false;
    case Disposition::Unsupported:
      log_.warn("queue {} head {}: {}", queue, head, r.why);
      complete(queue, head, r.status, {kStatusUnsupp, 1});
      return false;
    case Disposition::GetId: {
      // Serial padded with NULs to the buffer (at most 20 bytes).
      uint64_t copied = 0;
      for (const iovec& v : r.data) {
        auto* dst = static_cast<uint8_t*>(v.iov_base);
        for (size_t i = 0; i < v.iov_len; ++i, ++copied) {
          dst[i] = copied < options_.id.size() ? options_.id[copied] : 0;
        }
      }
      complete(queue, head, r.status, {kStatusOk, r.used_len});
      return false;
    }
    case Disposition::ToDisk: {
      using storage::RequestType;
      const bool transfer = r.type == RequestType::Read || r.type == RequestType::Write;
      if (transfer && r.length == 0) {
        complete(queue, head, r.status, {kStatusOk, r.used_len});
        return false;
      }
      break;
    }
  }
  return submit_to_disk(queue, head, slot);
}

VirtioBlk::SlotKey VirtioBlk::slot_key(uint32_t generation, uint16_t queue, uint16_t head) {
  return SlotKey{uint64_t{generation} << 32 | uint64_t{queue} << 16 | head};
}

bool VirtioBlk::submit_to_disk(uint16_t queue, uint16_t head, Slot& slot) {
  const BlkRequest& r = slot.request;
  slot.generation = static_cast<uint32_t>(generation_);
  slot.in_flight = true;
  storage::DiskRequest d;
  d.op = r.type;
  d.offset = r.offset;
  d.iov = r.data;
  d.length = r.length;
  d.unmap = r.unmap;
  const SlotKey key = slot_key(slot.generation, queue, head);
  d.done = [this, key](int result) { on_disk_done(key, result); };
  try {
    disk_->submit(std::move(d));
  } catch (const std::exception& e) {
    log_.warn("queue {} head {}: disk submit failed: {}", queue, head, e.what());
    if (slot.in_flight) on_disk_done(key, -EIO);  // not completed by the disk
    return false;
  }
  return true;
}

void VirtioBlk::on_disk_done(SlotKey key, int result) {
  const auto bits = static_cast<uint64_t>(key);
  const auto generation = static_cast<uint32_t>(bits >> 32);
  const auto queue = static_cast<uint16_t>(bits >> 16);
  const auto head = static_cast<uint16_t>(bits);
  // Reset since: the driver forgot the request (and the slots may be new).
  if (generation != static_cast<uint32_t>(generation_) || queue >= slots_.size()) return;
  Slot& slot = slots_[queue][head];
  slot.in_flight = false;
  if (result != 0) log_.warn("queue {} head {}: disk error {}", queue, head, result);
  complete(queue, head, slot.request.status,
           result == 0 ? Answer{kStatusOk, slot.request.used_len} : Answer{kStatusIoErr, 1});
}

void VirtioBlk::complete(uint16_t queue, uint16_t head, uint8_t* status, Answer answer) {
  *status = answer.code;
  // The status byte must be visible before the used entry (2.7.14);
  // push_used's release fence orders it.
  queues_[queue].push_used(head, answer.used_len);
  used_pending_[queue] = true;
}

void VirtioBlk::on_disk_completions() {
  disk_->process_completions();
  signal_used();
}

bool VirtioBlk::poll() {
  if (!active_) return false;
  bool found = false;
  if (disk_->completions_ready()) {
    on_disk_completions();
    found = true;
  }
  for (size_t q = 0; q < queues_.size() && !intake_stopped_; ++q) {
    if (!queues_[q].has_available()) continue;
    process_queue(static_cast<uint16_t>(q));
    found = true;
  }
  return found;
}

void VirtioBlk::set_polling(bool polling) {
  if (!active_) return;
  for (SplitQueue& q : queues_) q.set_notifications(!polling);
}

void VirtioBlk::signal_used() {
  if (!active_) return;
  bool interrupt = false;
  for (size_t i = 0; i < queues_.size(); ++i) {
    if (!used_pending_[i]) continue;
    used_pending_[i] = false;
    interrupt |= queues_[i].needs_interrupt();
  }
  if (interrupt) signals_->used_buffer();
  publish_ring_state();
}

void VirtioBlk::publish_ring_state() {
  // Relaxed: each value is a report on its own; one batch's stores are two
  // or three per queue, whatever the number of requests in it.
  for (size_t i = 0; i < options_.num_queues; ++i) {
    PublishedQueue& p = published_[i];
    const bool live = active_ && i < queues_.size() && queues_[i].ready();
    p.avail_idx.store(live ? queues_[i].avail_idx_word() : nullptr, std::memory_order_relaxed);
    p.last_avail.store(live ? queues_[i].last_avail() : 0, std::memory_order_relaxed);
    p.used_idx.store(live ? queues_[i].used_idx() : 0, std::memory_order_relaxed);
    p.needs_reset.store(live && queues_[i].broken(), std::memory_order_relaxed);
  }
}

std::vector<QueueRingState> VirtioBlk::published_ring_states() const {
  std::vector<QueueRingState> out(options_.num_queues);
  for (size_t i = 0; i < out.size(); ++i) {
    const PublishedQueue& p = published_[i];
    QueueRingState& s = out[i];
    // The pointer stays valid after a reset clears it: guest RAM outlives
    // every device (a stale read is only a stale report).
    if (uint16_t* avail = p.avail_idx.load(std::memory_order_relaxed)) {
      s.ready = true;
      s.avail_idx = std::atomic_ref<uint16_t>(*avail).load(std::memory_order_relaxed);
    }
    s.last_avail = p.last_avail.load(std::memory_order_relaxed);
    s.used_idx = p.used_idx.load(std::memory_order_relaxed);
    s.needs_reset = p.needs_reset.load(std::memory_order_relaxed);
  }
  return out;
}

void VirtioBlk::refresh_ring_states(std::function<void()> answered) {
  loop_.post([this, answered = std::move(answered)] {
    publish_ring_state();
    answered();
  });
}

void VirtioBlk::reset() {
  ++generation_;  // in-flight completions no longer touch guest memory
  active_ = false;
  // The kernel may still be writing guest buffers for in-flight reads:
  // wait for them before the driver reuses the memory (reset is synchronous).
  if (disk_->in_flight() > 0) disk_->drain();
  queues_.clear();
  used_pending_.clear();
  signals_ = nullptr;
  publish_ring_state();
  negotiated_features_.store(0);
  if (disk_->write_cache_enabled() != original_write_cache_) {
    disk_->set_write_cache(original_write_cache_);
  }
}

void VirtioBlk::quiesce() {
  // Requests the guest submitted finish (and are reported in the used ring),
  // then one flush: a no-op where the mode ignores flushes (unsafe), an
  // fdatasync where it honours them, so a graceful stop loses nothing.
  const int result = drain_and_flush(*disk_, false);
  if (result != 0) log_.warn("final flush on shutdown failed: {}", std::strerror(-result));
}

DiskFlushReport VirtioBlk::flush_to_host() {
  DiskFlushReport report;
  report.flushed = !disk_->read_only();
  try {
    report.error = drain_and_flush(*disk_, true);
    if (report.error != 0) {
      log_.warn("flush requested through the API failed: {}", std::strerror(-report.error));
    }
  } catch (const std::exception& e) {
    log_.warn("flush requested through the API failed: {}", e.what());
    report.error = -EIO;
  }
  signal_used();  // what the drain completed reaches the guest now
  const storage::DiskStats stats = disk_->stats();
  report.at_risk_bytes = stats.at_risk_bytes;
  report.at_risk_requests = stats.at_risk_requests;
  return report;
}

void VirtioBlk::resume_intake() {
  intake_stopped_ = false;
  if (!active_) return;
  // The guest's notify for a chain published while intake was stopped may
  // have been consumed already: look at every ring once.
  for (size_t q = 0; q < queues_.size(); ++q) {
    if (queues_[q].has_available()) process_queue(static_cast<uint16_t>(q));
  }
}

}  // namespace minivmm::virtio::blk
