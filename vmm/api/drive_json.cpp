#include "vmm/api/drive_json.h"

namespace minivmm::api {

nlohmann::json drive_json(const DriveReport& d) {
  const storage::DiskStats& s = d.stats;
  const storage::LatencyHistogram& h = s.flush_latency_us;
  // Upper bounds of the non-empty buckets (storage/disk_stats.h): enough to
  // rebuild any percentile without the empty tail.
  nlohmann::json buckets = nlohmann::json::array();
  for (size_t b = 0; b < storage::LatencyHistogram::kBuckets; ++b) {
    if (h.bucket(b) == 0) continue;
    const uint64_t upper = storage::LatencyHistogram::bucket_upper(b);
    buckets.push_back(
        {{"le_us", upper == UINT64_MAX ? nlohmann::json("+Inf") : nlohmann::json(upper)},
         {"count", h.bucket(b)}});
  }
  return {
      {"drive_id", d.drive_id},
      {"path_on_host", d.path_on_host},
      {"is_read_only", d.is_read_only},
      {"cache_type", d.cache_type},
      {"io_engine", d.io_engine},
      {"serial", d.serial},
      {"num_queues", d.num_queues},
      {"stats",
       {
           {"read_ops", s.reads},
           {"write_ops", s.writes},
           {"dsync_writes", s.dsync_writes},
           {"batched_durable_writes", s.batched_durable_writes},
           {"flush_requests", s.flush_requests},
           {"host_fdatasyncs", s.fdatasyncs},
           {"discard_ops", s.discards},
           {"write_zeroes_ops", s.write_zeroes},
           {"bounce_bytes_peak", s.bounce_bytes_peak},
           {"bounce_waits", s.bounce_waits},
           {"at_risk_bytes", s.at_risk_bytes},
           {"at_risk_requests", s.at_risk_requests},
           {"flush_latency_us",
            {{"count", h.count()},
             {"p50", h.percentile(0.50)},
             {"p99", h.percentile(0.99)},
             {"max", h.max()},
             {"buckets", buckets}}},
       }},
  };
}

}  // namespace minivmm::api
