#include "vmm/api/prometheus_metrics.h"

#include <fmt/format.h>

#include <functional>

namespace minivmm::api {
namespace {

// One metric family: its HELP and TYPE lines, then one sample per disk.
void disk_family(std::string& out, const std::vector<DriveReport>& drives, const char* name,
                 const char* type, const char* help,
                 const std::function<double(const storage::DiskStats&)>& value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  for (const DriveReport& d : drives) {
    // drive_id is "0", "1", ...: nothing in it needs escaping.
    out += fmt::format("{}{{drive_id=\"{}\"}} {}\n", name, d.drive_id, value(d.stats));
  }
}

double seconds(uint64_t us) { return static_cast<double>(us) / 1e6; }

}  // namespace

std::string prometheus_metrics(const VmControl& vm) {
  std::string out;
  out +=
      "# HELP minivmm_uptime_seconds Time since the VMM process started.\n"
      "# TYPE minivmm_uptime_seconds gauge\n";
  out += fmt::format("minivmm_uptime_seconds {}\n", static_cast<double>(vm.uptime_ms()) / 1e3);
  out +=
      "# HELP minivmm_vm_paused 1 while the vCPUs are paused through the API.\n"
      "# TYPE minivmm_vm_paused gauge\n";
  out += fmt::format("minivmm_vm_paused {}\n", vm.state() == VmState::kPaused ? 1 : 0);

  const std::vector<DriveReport> drives = vm.drives();
  using S = storage::DiskStats;
  const auto n = [](uint64_t v) { return static_cast<double>(v); };
  disk_family(out, drives, "minivmm_disk_reads_total", "counter",
              "Host reads carried out for guest reads.", [&](const S& s) { return n(s.reads); });
  disk_family(out, drives, "minivmm_disk_writes_total", "counter",
              "Host writes carried out for guest writes.", [&](const S& s) { return n(s.writes); });
  disk_family(out, drives, "minivmm_disk_dsync_writes_total", "counter",
              "Guest writes made durable by RWF_DSYNC before completing.",
              [&](const S& s) { return n(s.dsync_writes); });
  disk_family(out, drives, "minivmm_disk_batched_durable_writes_total", "counter",
              "Guest writes made durable by an fdatasync after them before completing.",
              [&](const S& s) { return n(s.batched_durable_writes); });
  disk_family(out, drives, "minivmm_disk_flush_requests_total", "counter",
              "Guest flush requests received.", [&](const S& s) { return n(s.flush_requests); });
  disk_family(out, drives, "minivmm_disk_host_fdatasyncs_total", "counter",
              "Host fdatasync calls completed, for any reason.",
              [&](const S& s) { return n(s.fdatasyncs); });
  disk_family(out, drives, "minivmm_disk_discards_total", "counter",
              "Guest discards the host carried out.", [&](const S& s) { return n(s.discards); });
  disk_family(out, drives, "minivmm_disk_write_zeroes_total", "counter",
              "Guest write-zeroes the host carried out.",
              [&](const S& s) { return n(s.write_zeroes); });
  disk_family(out, drives, "minivmm_disk_bounce_waits_total", "counter",
              "Requests that waited for an O_DIRECT bounce buffer.",
              [&](const S& s) { return n(s.bounce_waits); });
  disk_family(out, drives, "minivmm_disk_bounce_peak_bytes", "gauge",
              "Most O_DIRECT bounce buffer memory held at once.",
              [&](const S& s) { return n(s.bounce_bytes_peak); });
  disk_family(out, drives, "minivmm_disk_at_risk_bytes", "gauge",
              "Bytes acknowledged to the guest but not yet durable on the host.",
              [&](const S& s) { return n(s.at_risk_bytes); });
  disk_family(out, drives, "minivmm_disk_at_risk_requests", "gauge",
              "Requests acknowledged to the guest but not yet durable on the host.",
              [&](const S& s) { return n(s.at_risk_requests); });
  disk_family(out, drives, "minivmm_disk_flush_completed_total", "counter",
              "Guest flush requests completed (the latency figures' count).",
              [&](const S& s) { return n(s.flush_latency_us.count()); });
  disk_family(out, drives, "minivmm_disk_flush_latency_p50_seconds", "gauge",
              "Upper bound of the median guest flush latency (log2 buckets).",
              [](const S& s) { return seconds(s.flush_latency_us.percentile(0.50)); });
  disk_family(out, drives, "minivmm_disk_flush_latency_p99_seconds", "gauge",
              "Upper bound of the 99th percentile guest flush latency (log2 buckets).",
              [](const S& s) { return seconds(s.flush_latency_us.percentile(0.99)); });
  disk_family(out, drives, "minivmm_disk_flush_latency_max_seconds", "gauge",
              "Longest guest flush, received to completed.",
              [](const S& s) { return seconds(s.flush_latency_us.max()); });
  return out;
}

}  // namespace minivmm::api
