#include "vmm/api/machine_control.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "storage/disk_stats.h"
#include "vmm/api/config_json.h"
#include "vmm/run/exit_codes.h"

namespace minivmm::api {
namespace {

// How long a pause may take to bring every vCPU out of KVM_RUN: a vCPU
// leaves at the next exit or at once on the interrupt signal, so seconds
// mean a stuck host.
constexpr std::chrono::milliseconds kPauseTimeout{2000};
// How long FlushDisks may take before the answer is a 504: under the 10 s a
// client gets to read its answer, long enough for an fdatasync of a large
// dirty page cache on a healthy host.
constexpr std::chrono::milliseconds kFlushDisksTimeout{8000};

}  // namespace

MachineControl::MachineControl(const VmConfig& config, RunState& state, VcpuPause& pause,
                               const std::vector<std::unique_ptr<Vcpu>>& vcpus,
                               std::vector<const storage::Disk*> disks,
                               std::vector<virtio::blk::VirtioBlk*> devices, EventLoop& loop,
                               std::chrono::steady_clock::time_point started)
    : config_(config),
      state_(state),
      pause_(pause),
      vcpus_(vcpus),
      disks_(std::move(disks)),
      devices_(std::move(devices)),
      loop_(loop),
      started_(started) {}

std::string MachineControl::id() const { return "minivmm-" + std::to_string(::getpid()); }

VmState MachineControl::state() const {
  if (state_.stopping()) return VmState::kStopping;
  return pause_.paused() ? VmState::kPaused : VmState::kRunning;
}

uint64_t MachineControl::uptime_ms() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now() - started_)
                                   .count());
}

nlohmann::json MachineControl::config() const { return config_json(config_); }

std::vector<DriveReport> MachineControl::drives() const {
  std::vector<DriveReport> out;
  for (size_t i = 0; i < disks_.size() && i < config_.disks.size(); ++i) {
    const DiskConfig& d = config_.disks[i];
    DriveReport r;
    r.drive_id = std::to_string(i);
    r.path_on_host = d.path;
    r.is_read_only = d.read_only;
    r.cache_type = storage::to_string(d.cache);
    r.io_engine = io_engine_name(d.io_engine);
    r.serial = d.id;
    r.num_queues = d.queues;
    // The snapshot the disk's loop thread publishes (under the disk's own
    // mutex): never the live counters that thread is updating.
    if (const auto* source = dynamic_cast<const storage::DiskStatsSource*>(disks_[i])) {
      r.stats = source->published_stats();
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string MachineControl::pause() {
  if (state_.stopping()) return "the VM is stopping";
  const bool all = pause_.pause(
      [this] {
        for (const auto& v : vcpus_) v->interrupt_run();
      },
      kPauseTimeout);
  if (!all) return "the vCPUs did not all leave KVM_RUN within 2 s; the VM keeps running";
  spdlog::info("API: VM paused");
  return "";
}

std::string MachineControl::resume() {
  if (state_.stopping()) return "the VM is stopping";
  pause_.resume();
  spdlog::info("API: VM resumed");
  return "";
}

std::string MachineControl::stop() {
  spdlog::info("API: stop requested: stopping the guest");
  state_.request_stop(exit_code::kOk, "stop requested through the API");
  return "";
}

FlushDisksResult MachineControl::flush_disks() {
  FlushDisksResult out;
  if (state_.stopping()) {
    out.refused = "the VM is stopping";
    return out;
  }
  spdlog::info("API: flushing {} disk(s)", devices_.size());
  const auto reports = virtio::blk::flush_disks(loop_, devices_, kFlushDisksTimeout);
  if (!reports) {
    spdlog::warn("API: the disks did not drain and flush within {} ms", kFlushDisksTimeout.count());
    out.timed_out = true;
    out.waited = kFlushDisksTimeout;
    return out;
  }
  for (size_t i = 0; i < reports->size() && i < config_.disks.size(); ++i) {
    const virtio::blk::DiskFlushReport& r = (*reports)[i];
    DriveFlush d;
    d.drive_id = std::to_string(i);
    d.path_on_host = config_.disks[i].path;
    d.cache_type = storage::to_string(config_.disks[i].cache);
    d.flushed = r.flushed;
    d.error = r.error;
    d.at_risk_bytes = r.at_risk_bytes;
    d.at_risk_requests = r.at_risk_requests;
    out.drives.push_back(std::move(d));
  }
  return out;
}

}  // namespace minivmm::api
