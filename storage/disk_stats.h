// Per-disk statistics that are more than counters: the durability window
// (bytes and requests acknowledged to the guest but not yet durable on the
// host) and the flush latency histogram; the `disk N stats:` line they are
// reported in; and the registry of open disks that lets another thread (the
// signal watcher, on SIGUSR1) log that line while the VM runs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace minivmm::storage {

struct DiskStats;

// Fixed-size log2 histogram of durations in microseconds: bucket 0 holds 0,
// bucket b >= 1 holds [2^(b-1), 2^b - 1], the last bucket everything above.
// No allocation: record() is one increment.
class LatencyHistogram {
 public:
  static constexpr size_t kBuckets = 40;  // 2^39 us is about 6 days

  void record(uint64_t us);
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  // The smallest bucket upper bound at or below which a fraction `p` (0..1]
  // of the recorded values lie, clamped to max(): an upper bound for the
  // p-quantile, at most 2x above it. 0 when nothing was recorded.
  uint64_t percentile(double p) const;
  uint64_t bucket(size_t b) const { return buckets_[b]; }
  static size_t bucket_of(uint64_t us);
  static uint64_t bucket_upper(size_t b);

 private:
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

// "disk N stats: reads=... write_zeroes=... at_risk_bytes=... flush_max_us=..."
// The prefix up to write_zeroes is what tests/e2e and tests/crash parse; new
// fields go at the end.
std::string format_disk_stats(size_t index, const DiskStats& s);

// Open disks, in the order they were opened (minivmm opens its disks in
// config order, so the position is the disk's index). An entry is a callback
// that returns a thread-safe snapshot of that disk's stats.
class DiskStatsSource {
 public:
  virtual ~DiskStatsSource() = default;
  // Any thread: the stats as last published by the disk's loop thread.
  virtual DiskStats published_stats() const = 0;
};
void register_disk_stats(const DiskStatsSource* source);
void unregister_disk_stats(const DiskStatsSource* source);
// Any thread: logs format_disk_stats() for every registered disk (spdlog
// info), prefixed by nothing else; returns how many lines were logged.
size_t log_registered_disk_stats();

}  // namespace minivmm::storage
