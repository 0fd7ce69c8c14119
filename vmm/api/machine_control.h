// VmControl (vm_control.h) over the running machine: the run state, the
// vCPUs and their pause gate, the disks' published stats, the config.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "common/event_loop.h"
#include "devices/virtio_blk/host_flush.h"
#include "devices/virtio_blk/virtio_blk.h"
#include "storage/disk.h"
#include "vmm/api/vm_control.h"
#include "vmm/config/vm_config.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vcpu_pause.h"
#include "vmm/run/run_state.h"

namespace minivmm::api {

class MachineControl final : public VmControl {
 public:
  // `disks[i]` is config.disks[i]'s open disk and `devices[i]` its
  // virtio-blk device, served by `loop`; all must outlive this.
  MachineControl(const VmConfig& config, RunState& state, VcpuPause& pause,
                 const std::vector<std::unique_ptr<Vcpu>>& vcpus,
                 std::vector<const storage::Disk*> disks,
                 std::vector<virtio::blk::VirtioBlk*> devices, EventLoop& loop,
                 std::chrono::steady_clock::time_point started);

  std::string id() const override;
  VmState state() const override;
  uint64_t uptime_ms() const override;
  nlohmann::json config() const override;
  std::vector<DriveReport> drives() const override;
  std::string pause() override;
  std::string resume() override;
  std::string stop() override;
  FlushDisksResult flush_disks() override;

 private:
  const VmConfig& config_;
  RunState& state_;
  VcpuPause& pause_;
  const std::vector<std::unique_ptr<Vcpu>>& vcpus_;
  std::vector<const storage::Disk*> disks_;
  std::vector<virtio::blk::VirtioBlk*> devices_;
  EventLoop& loop_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace minivmm::api
