// Which durable writes share which fdatasync, while the write cache is off
// (image_disk.h: durability design). Bookkeeping only, by request id: the
// ImageDisk issues the writes and the sync, this decides the route and what
// each sync covers.
//  staged   submitted, route decided at kick()
//  in host  issued (RWF_DSYNC or plain), not completed
//  awaiting plain writes done, waiting for an fdatasync issued after them
//  covered  ... covered by the batch fdatasync in flight
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace minivmm::storage {

class DurableWriteBatch {
 public:
  // A batch sync waits until no batch write is still in the host, so one
  // fdatasync covers the whole batch. A submitter that never lets the host go
  // idle would starve it; past this many waiting writes it goes out anyway.
  static constexpr size_t kMaxWritesPerSync = 1024;

  void stage(uint64_t id) { staged_.push_back(id); }
  bool has_staged() const { return !staged_.empty(); }
  // The staged ids into `out` (whose capacity staging keeps) and their
  // route: false = a lone durable write with nothing durable in flight,
  // RWF_DSYNC; true = plain writes sharing one fdatasync.
  bool take_staged(std::vector<uint64_t>& out) {
    const bool batch =
        staged_.size() > 1 || durable_in_host_ > 0 || !awaiting_.empty() || sync_in_flight_;
    out.clear();
    out.swap(staged_);
    return batch;
  }
  void issued(bool batch) {
    ++durable_in_host_;
    if (batch) ++batch_in_host_;
  }
  void host_completed(bool batch) {
    --durable_in_host_;
    if (batch) --batch_in_host_;
  }
  // A batch write the host completed: it completes with the next sync.
  void await_sync(uint64_t id) { awaiting_.push_back(id); }
  // Writes wait for a sync and none is in flight.
  bool sync_wanted() const { return !sync_in_flight_ && !awaiting_.empty(); }
  // ... and it may go out now (see kMaxWritesPerSync).
  bool sync_due() const {
    return sync_wanted() && (batch_in_host_ == 0 || awaiting_.size() >= kMaxWritesPerSync);
  }
  // Writes that wait for a sync which cannot prove anything (a sync failed
  // before): the caller fails them and then clears this.
  std::vector<uint64_t>& awaiting() { return awaiting_; }
  // Issued only after every write it covers completed.
  void start_sync() {
    covered_.swap(awaiting_);
    sync_in_flight_ = true;
  }
  // The writes the finished sync covered; the caller completes them and
  // then clears this.
  std::vector<uint64_t>& finish_sync() {
    sync_in_flight_ = false;
    return covered_;
  }
  // The engine failed: every request is failed elsewhere.
  void forget_requests() {
    staged_.clear();
    awaiting_.clear();
    covered_.clear();
  }

 private:
  std::vector<uint64_t> staged_;
  std::vector<uint64_t> awaiting_;
  std::vector<uint64_t> covered_;
  bool sync_in_flight_ = false;
  size_t durable_in_host_ = 0;  // Dsync/BatchSync writes issued, not completed
  size_t batch_in_host_ = 0;    // BatchSync writes issued, not completed
};

}  // namespace minivmm::storage
