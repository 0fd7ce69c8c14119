// Per-disk statistics: the counters (DiskStats), the durability window
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

// Counters of what reached the host, kept by the Disk on its loop thread.
// Each counts host operations that completed successfully, except
// flush_requests (guest flushes received, whatever the mode does with them).
struct DiskStats {
  uint64_t reads = 0;   // host reads for guest reads
  uint64_t writes = 0;  // host writes for guest writes
  // Guest writes made durable before completing (cache-modes.md, write
  // cache off), by one of two routes; their sum equals `writes` whenever
  // the write cache was off for every write:
  uint64_t dsync_writes = 0;            // the write itself carried RWF_DSYNC
  uint64_t batched_durable_writes = 0;  // plain write, then an fdatasync issued
                                        // after it completed, before the guest saw it
  uint64_t flush_requests = 0;          // guest flush requests received
  uint64_t fdatasyncs = 0;              // host fdatasync (any reason) completed
  uint64_t discards = 0;                // guest discards the host carried out
  uint64_t write_zeroes = 0;            // guest write-zeroes the host carried out
  uint64_t bounce_bytes_peak = 0;       // O_DIRECT bounce memory held at once, at most
  uint64_t bounce_waits = 0;            // requests that waited for a bounce buffer (pool exhausted)
  // The durability window: writes and write-zeroes completed to the guest
  // successfully without being made durable first (write cache on, or a mode
  // that ignores flushes), and not yet covered by a completed host fdatasync
  // that was issued after they completed. What a host power cut right now
  // may lose; always 0 while the write cache is off in writethrough and
  // directsync. unsafe never issues an fdatasync, so there it only grows.
  uint64_t at_risk_bytes = 0;
  uint64_t at_risk_requests = 0;
  // Guest flush requests: received by submit() -> completed to the guest.
  LatencyHistogram flush_latency_us;
  uint64_t durable_writes() const { return dsync_writes + batched_durable_writes; }
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
