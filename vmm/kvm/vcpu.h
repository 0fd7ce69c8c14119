// One virtual CPU: its KVM fd, the shared kvm_run page, its register state
// and the loop that runs it on its own thread, dispatching exits to the I/O
// bus and turning the exits it cannot handle into a clean stop with a
// diagnostic (exit reason, RIP, instruction bytes).
#pragma once

#include <linux/kvm.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/guest_memory.h"
#include "common/unique_fd.h"
#include "vmm/kvm/exit_history.h"
#include "vmm/kvm/io_bus.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/vcpu_pause.h"
#include "vmm/kvm/vm.h"
#include "vmm/run/run_state.h"

namespace minivmm {

struct VcpuOptions {
  // Inject #BP for int3 instructions KVM's emulator cannot execute (PVM).
  bool emulate_int3 = false;
  // Hide the KVM paravirt features that work by hypercall (PV IPIs, TLB
  // flush, sched yield, spinlock unhalt): on PVM an AP spinning in
  // kvm_hypercall4(KVM_HC_SEND_IPI) never brought the other CPU up.
  bool hide_pv_hypercalls = false;
  // PVM: the guest runs with `noxsave` (pvm_quirks.h); its CPUID says so too.
  bool hide_xsave = false;
  // The guest's CPU count, for the topology leaves (cpuid.h).
  unsigned vcpu_count = 1;
};

class Vcpu {
 public:
  Vcpu(const KvmSystem& kvm, const Vm& vm, unsigned index,
       const std::vector<kvm_cpuid_entry2>& supported_cpuid, VcpuOptions options);
  ~Vcpu();
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;

  unsigned index() const { return index_; }
  kvm_regs regs() const;
  void set_regs(const kvm_regs& regs) const;
  kvm_sregs sregs() const;
  void set_sregs(const kvm_sregs& sregs) const;

  // Runs until `state` says stop; returns when this vCPU has left KVM_RUN.
  // A fatal exit calls state.request_stop() itself.
  void run(const IoBus& bus, RunState& state);
  // Before run(): the gate run() checks before each KVM_RUN (vcpu_pause.h).
  void set_pause_gate(VcpuPause& gate) { pause_ = &gate; }
  // From any thread: makes run() leave KVM_RUN promptly.
  void interrupt_run();
  // From any thread: the next interrupted KVM_RUN records the guest RIP.
  void request_sample();
  const std::map<uint64_t, uint64_t>& rip_samples() const { return rip_samples_; }
  uint64_t int3_injections() const { return int3_injections_; }
  // One line of state for diagnostics: RIP, CS, CR0, MP state.
  std::string describe() const;

 private:
  // What a triple fault leaves to report: the last exits, sregs and events.
  std::string shutdown_report() const;
  void set_cpuid(const std::vector<kvm_cpuid_entry2>& supported) const;
  void set_boot_msrs() const;
  void set_lapic_lint() const;
  // Returns false when the run must end.
  bool handle_exit(const IoBus& bus, RunState& state);
  bool handle_internal_error(RunState& state);
  void fail(RunState& state, int code, const std::string& what);
  std::vector<uint8_t> instruction_bytes(uint64_t rip) const;
  void tell_guest_paused() const;

  unsigned index_;
  GuestMemory mem_;
  VcpuOptions options_;
  UniqueFd fd_;
  kvm_run* run_ = nullptr;
  size_t run_size_ = 0;
  std::atomic<pthread_t> thread_{};
  std::atomic<bool> running_{false};
  std::atomic<bool> sample_requested_{false};
  VcpuPause* pause_ = nullptr;
  std::map<uint64_t, uint64_t> rip_samples_;  // RIP -> hits (touched by this vCPU's thread only)
  uint64_t int3_injections_ = 0;
  ExitHistory history_;  // touched by this vCPU's thread only
};

// The signal that interrupts a vCPU thread's KVM_RUN (a no-op handler).
void install_vcpu_interrupt_handler();

}  // namespace minivmm
