#include "storage/disk_stats.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <mutex>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace minivmm::storage {

size_t LatencyHistogram::bucket_of(uint64_t us) {
  return std::min<size_t>(static_cast<size_t>(std::bit_width(us)), kBuckets - 1);
}

uint64_t LatencyHistogram::bucket_upper(size_t b) {
  if (b == 0) return 0;
  if (b >= kBuckets - 1) return UINT64_MAX;
  return (uint64_t{1} << b) - 1;
}

void LatencyHistogram::record(uint64_t us) {
  ++buckets_[bucket_of(us)];
  ++count_;
  max_ = std::max(max_, us);
}

uint64_t LatencyHistogram::percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 1.0);
  const auto rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(p * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (size_t b = 0; b < kBuckets; ++b) {
    seen += buckets_[b];
    if (seen >= rank) return std::min(bucket_upper(b), max_);
  }
  return max_;
}

std::string format_disk_stats(size_t index, const DiskStats& s) {
  return fmt::format(
      "disk {} stats: reads={} writes={} dsync_writes={} batched_durable_writes={} "
      "flush_requests={} fdatasyncs={} discards={} write_zeroes={} at_risk_bytes={} "
      "at_risk_requests={} flush_p50_us={} flush_p99_us={} flush_max_us={}",
      index, s.reads, s.writes, s.dsync_writes, s.batched_durable_writes, s.flush_requests,
      s.fdatasyncs, s.discards, s.write_zeroes, s.at_risk_bytes, s.at_risk_requests,
      s.flush_latency_us.percentile(0.50), s.flush_latency_us.percentile(0.99),
      s.flush_latency_us.max());
}

namespace {

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

std::vector<const DiskStatsSource*>& registry() {
  static std::vector<const DiskStatsSource*> r;
  return r;
}

}  // namespace

void register_disk_stats(const DiskStatsSource* source) {
  const std::lock_guard lock(registry_mutex());
  registry().push_back(source);
}

void unregister_disk_stats(const DiskStatsSource* source) {
  const std::lock_guard lock(registry_mutex());
  auto& r = registry();
  r.erase(std::remove(r.begin(), r.end(), source), r.end());
}

size_t log_registered_disk_stats() {
  // The lock keeps every source alive while it is read: a disk unregisters
  // before its members go.
  const std::lock_guard lock(registry_mutex());
  const auto& r = registry();
  for (size_t i = 0; i < r.size(); ++i)
    spdlog::info("{}", format_disk_stats(i, r[i]->published_stats()));
  return r.size();
}

}  // namespace minivmm::storage
