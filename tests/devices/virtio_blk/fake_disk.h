// A memory-backed storage::Disk for device tests. It records what the device
// asked of it (write-cache changes, flushes, discards, requests outside the
// image) and can hold completions back to test requests in flight.
// Used on the event-loop thread only, like a real Disk; tests read it
// through EventLoop::run_sync.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "storage/disk.h"

namespace minivmm::virtio::testing {

class FakeDisk : public storage::Disk {
 public:
  struct Options {
    uint64_t size = 1 << 20;
    uint32_t block_size = 512;
    bool read_only = false;
    storage::CacheMode mode = storage::CacheMode::Writeback;
    std::string path = {};  // what path() reports (log names)
  };

  explicit FakeDisk(Options o)
      : options_(o),
        image_(o.size, 0),
        write_cache_(storage::traits(o.mode).write_cache),
        completion_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  std::string path() const override { return options_.path; }
  uint64_t size_bytes() const override { return options_.size; }
  uint32_t logical_block_size() const override { return options_.block_size; }
  bool read_only() const override { return options_.read_only; }
  storage::CacheMode configured_mode() const override { return options_.mode; }
  bool write_cache_enabled() const override { return write_cache_; }
  void set_write_cache(bool enabled) override {
    write_cache_ = enabled;
    wce_calls.push_back(enabled);
  }

  void submit(storage::DiskRequest r) override {
    if (throw_on_submit) throw std::runtime_error("injected: submit failed");
    ++submitted;
    queued_.push_back(std::move(r));
  }
  void kick() override {
    ++kicks;
    if (hold) return;
    complete_queued();
  }
  int completion_fd() const override { return completion_.get(); }
  void process_completions() override {
    uint64_t n = 0;
    [[maybe_unused]] ssize_t r = ::read(completion_.get(), &n, sizeof(n));
    run_done();
  }
  void drain() override {
    complete_queued();
    run_done();
  }
  size_t in_flight() const override { return queued_.size() + done_.size(); }
  // Counted like a real Disk: write-cache-off writes count as RWF_DSYNC ones,
  // honoured (or host_sync) flushes as one fdatasync each, which empties the
  // durability window the cached writes fill.
  storage::DiskStats stats() const override { return stats_; }

  // Completes held requests (as if the kernel finished them).
  void release() {
    hold = false;
    complete_queued();
  }

  std::vector<uint8_t>& image() { return image_; }

  bool hold = false;             // keep requests in flight until release()/drain()
  int fail_with = 0;             // non-zero: every request completes with -fail_with
  bool throw_on_submit = false;  // submit() throws (allocation failure, ...)
  uint64_t submitted = 0;
  uint64_t kicks = 0;
  uint64_t flushes = 0;
  uint64_t host_syncs = 0;         // flushes that asked for a host sync (DiskRequest::host_sync)
  int fail_flush_with = 0;         // non-zero: flushes complete with -fail_flush_with
  std::function<void()> on_flush;  // runs as a flush executes (loop thread)
  uint64_t out_of_range = 0;       // requests reaching outside the image: must stay 0
  std::vector<bool> wce_calls;
  struct Range {
    storage::RequestType op;
    uint64_t offset, length;
    bool unmap;
  };
  std::vector<Range> ranges;  // discard / write zeroes as received

 private:
  int execute(storage::DiskRequest& r) {
    using Op = storage::RequestType;
    if (r.op == Op::Flush) ++stats_.flush_requests;
    if (fail_with) return -fail_with;
    uint64_t len = r.length;
    if (r.op == Op::Read || r.op == Op::Write) {
      len = 0;
      for (const iovec& v : r.iov) len += v.iov_len;
    }
    if (r.op != Op::Flush && (r.offset > image_.size() || len > image_.size() - r.offset)) {
      ++out_of_range;
      return -EIO;
    }
    switch (r.op) {
      case Op::Read: {
        uint64_t off = r.offset;
        for (const iovec& v : r.iov) {
          std::memcpy(v.iov_base, image_.data() + off, v.iov_len);
          off += v.iov_len;
        }
        ++stats_.reads;
        return 0;
      }
      case Op::Write: {
        if (options_.read_only) return -EROFS;
        uint64_t off = r.offset;
        for (const iovec& v : r.iov) {
          std::memcpy(image_.data() + off, v.iov_base, v.iov_len);
          off += v.iov_len;
        }
        ++stats_.writes;
        if (!write_cache_ && storage::traits(options_.mode).flush_honoured) {
          ++stats_.dsync_writes;
        } else {  // acked from the write cache: at risk until a sync (disk_stats.h)
          stats_.at_risk_bytes += len;
          ++stats_.at_risk_requests;
        }
        return 0;
      }
      case Op::Flush: {
        ++flushes;
        if (on_flush) on_flush();
        if (fail_flush_with) return -fail_flush_with;
        host_syncs += r.host_sync ? 1 : 0;
        if (storage::traits(options_.mode).flush_honoured || r.host_sync) {
          ++stats_.fdatasyncs;
          stats_.at_risk_bytes = 0;
          stats_.at_risk_requests = 0;
        }
        return 0;
      }
      case Op::Discard:
      case Op::WriteZeroes:
        ranges.push_back({r.op, r.offset, r.length, r.unmap});
        if (r.op == Op::WriteZeroes) {
          std::fill_n(image_.begin() + static_cast<std::ptrdiff_t>(r.offset), r.length, 0);
          ++stats_.write_zeroes;
        } else {
          ++stats_.discards;
        }
        return 0;
    }
    return -EINVAL;
  }

  void complete_queued() {
    if (queued_.empty()) return;
    while (!queued_.empty()) {
      auto r = std::move(queued_.front());
      queued_.pop_front();
      const int result = execute(r);
      done_.emplace_back(std::move(r.done), result);
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(completion_.get(), &one, sizeof(one));
  }

  void run_done() {
    while (!done_.empty()) {
      auto [done, result] = std::move(done_.front());
      done_.pop_front();
      done(result);
    }
  }

  Options options_;
  std::vector<uint8_t> image_;
  bool write_cache_;
  storage::DiskStats stats_;
  UniqueFd completion_;
  std::deque<storage::DiskRequest> queued_;
  std::deque<std::pair<std::function<void(int)>, int>> done_;
};

}  // namespace minivmm::virtio::testing
