#include "vmm/kvm/vcpu.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cstring>
#include <memory>
#include <sstream>

#include "vmm/kvm/cpuid.h"
#include "vmm/kvm/host_cpu.h"
#include "vmm/kvm/kvm_abi.h"
#include "vmm/kvm/pvm_quirks.h"
#include "vmm/run/exit_codes.h"

namespace minivmm {
namespace {

const int kInterruptSignal = SIGRTMIN;

std::string hex_bytes(const std::vector<uint8_t>& bytes) {
  std::ostringstream s;
  for (size_t i = 0; i < bytes.size(); ++i) {
    char buf[4];
    std::snprintf(buf, sizeof(buf), "%02x", bytes[i]);
    s << (i ? " " : "") << buf;
  }
  return bytes.empty() ? "(unreadable)" : s.str();
}

// x86 MSR numbers (Intel SDM vol. 4) given boot values, as Linux expects a
// freshly reset CPU to have them.
struct MsrValue {
  uint32_t index;
  uint64_t value;
};
constexpr MsrValue kBootMsrs[] = {
    {0x174, 0},               // IA32_SYSENTER_CS
    {0x175, 0},               // IA32_SYSENTER_ESP
    {0x176, 0},               // IA32_SYSENTER_EIP
    {0xc0000081, 0},          // STAR
    {0xc0000082, 0},          // LSTAR
    {0xc0000083, 0},          // CSTAR
    {0xc0000084, 0},          // SYSCALL_MASK
    {0xc0000102, 0},          // KERNEL_GS_BASE
    {0x10, 0},                // IA32_TSC
    {0x1a0, 1},               // IA32_MISC_ENABLE: fast strings
    {0x2ff, (1u << 11) | 6},  // MTRRdefType: MTRRs on, default write-back
    // AMD HWCR.TscFreqSel (bit 24): the TSC counts at the P0 frequency, as
    // the invariant TSC that CPUID 0x80000007 reports implies; without it a
    // Linux guest on AMD logs "[Firmware Bug]: TSC doesn't count with P0
    // frequency!". KVM emulates HWCR for every vendor; before Linux 6.6 it
    // refuses the bit (skipped below).
    {0xc0010015, 1u << 24},
};

}  // namespace

void install_vcpu_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sigaction(kInterruptSignal, &sa, nullptr);  // no SA_RESTART: KVM_RUN returns EINTR
}

Vcpu::Vcpu(const KvmSystem& kvm, const Vm& vm, unsigned index,
           const std::vector<kvm_cpuid_entry2>& supported_cpuid, VcpuOptions options)
    : index_(index), mem_(vm.memory()), options_(options) {
  int fd = ioctl(vm.fd(), KVM_CREATE_VCPU, index);
  if (fd < 0) throw sys_error("KVM_CREATE_VCPU " + std::to_string(index));
  fd_.reset(fd);
  run_size_ = kvm.vcpu_mmap_size();
  void* p = mmap(nullptr, run_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw sys_error("mmap of vCPU " + std::to_string(index) + " kvm_run");
  run_ = static_cast<kvm_run*>(p);
  set_cpuid(supported_cpuid);
  set_boot_msrs();
  set_lapic_lint();
}

Vcpu::~Vcpu() {
  if (run_) munmap(run_, run_size_);
}

kvm_regs Vcpu::regs() const {
  kvm_regs r{};
  if (ioctl(fd_.get(), KVM_GET_REGS, &r) < 0) throw sys_error("KVM_GET_REGS");
  return r;
}

void Vcpu::set_regs(const kvm_regs& r) const {
  if (ioctl(fd_.get(), KVM_SET_REGS, &r) < 0) throw sys_error("KVM_SET_REGS");
}

kvm_sregs Vcpu::sregs() const {
  kvm_sregs s{};
  if (ioctl(fd_.get(), KVM_GET_SREGS, &s) < 0) throw sys_error("KVM_GET_SREGS");
  return s;
}

void Vcpu::set_sregs(const kvm_sregs& s) const {
  if (ioctl(fd_.get(), KVM_SET_SREGS, &s) < 0) throw sys_error("KVM_SET_SREGS");
}

void Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& supported) const {
  VcpuCpuidPolicy policy;
  policy.vcpu_index = index_;
  policy.vcpu_count = options_.vcpu_count;
  policy.vendor = cpuid_vendor(supported);
  policy.permitted_xcr0 = guest_xstate_permission();
  const std::string host_hypervisor = host_hypervisor_signature();
  policy.hide_xsave = options_.hide_xsave || !host_tracks_guest_xsetbv(host_hypervisor);
  policy.hide_pv_hypercalls = options_.hide_pv_hypercalls;
  if (index_ == 0 && policy.hide_xsave && !options_.hide_xsave) {
    spdlog::info("guest XSAVE hidden: the host ({}) does not pass a guest's XSETBV to KVM",
                 host_hypervisor);
  }
  const std::vector<kvm_cpuid_entry2> entries = normalize_cpuid(supported, policy);
  for (const auto& e : entries) {
    if (e.function == 1) {
      spdlog::debug("vCPU {}: CPUID 1: {:08x} {:08x} {:08x} {:08x} (KVM_SET_CPUID2, {} entries)",
                    index_, e.eax, e.ebx, e.ecx, e.edx, entries.size());
    }
  }
  kvm_abi::VarArray<kvm_cpuid_entry2> cpuid(static_cast<uint32_t>(entries.size()));
  std::memcpy(cpuid.entries(), entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  if (ioctl(fd_.get(), kvm_abi::kSetCpuid2, cpuid.arg()) < 0) throw sys_error("KVM_SET_CPUID2");
}

void Vcpu::set_boot_msrs() const {
  // One MSR per call, so one that this KVM refuses is named and skipped.
  for (const MsrValue& m : kBootMsrs) {
    kvm_abi::VarArray<kvm_msr_entry> msrs(1);
    msrs.entries()[0].index = m.index;
    msrs.entries()[0].data = m.value;
    if (ioctl(fd_.get(), kvm_abi::kSetMsrs, msrs.arg()) != 1) {
      spdlog::debug("vCPU {}: KVM refused boot MSR 0x{:x}", index_, m.index);
    }
  }
}

void Vcpu::set_lapic_lint() const {
  // LINT0 in ExtINT mode (the 8259's output), LINT1 as NMI: the wiring the
  // MP table describes and Linux's virtual-wire setup expects.
  kvm_lapic_state lapic{};
  if (ioctl(fd_.get(), KVM_GET_LAPIC, &lapic) < 0) throw sys_error("KVM_GET_LAPIC");
  auto set_mode = [&](size_t offset, uint32_t mode) {
    uint32_t v;
    std::memcpy(&v, &lapic.regs[offset], 4);
    v = (v & ~0x700u) | (mode << 8);
    std::memcpy(&lapic.regs[offset], &v, 4);
  };
  set_mode(0x350, 7);  // LVT LINT0: ExtINT
  set_mode(0x360, 4);  // LVT LINT1: NMI
  if (ioctl(fd_.get(), KVM_SET_LAPIC, &lapic) < 0) throw sys_error("KVM_SET_LAPIC");
}

void Vcpu::interrupt_run() {
  run_->immediate_exit = 1;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (running_.load()) pthread_kill(thread_.load(), kInterruptSignal);
}

// KVM_KVMCLOCK_CTRL (Documentation/virt/kvm/api.rst 4.73): sets the
// PVCLOCK_GUEST_STOPPED flag, so the guest's soft-lockup watchdog does not
// count the paused time as a hang. EINVAL when the guest has not set up
// kvmclock (tiny guests): nothing to tell then.
void Vcpu::tell_guest_paused() const { ioctl(fd_.get(), KVM_KVMCLOCK_CTRL, 0); }

void Vcpu::request_sample() {
  sample_requested_.store(true);
  if (running_.load()) pthread_kill(thread_.load(), kInterruptSignal);
}

void Vcpu::run(const IoBus& bus, RunState& state) {
  thread_.store(pthread_self());
  running_.store(true);
  while (!state.stopping()) {
    if (pause_) pause_->park_if_requested(state, [this] { tell_guest_paused(); });
    if (state.stopping()) break;
    if (ioctl(fd_.get(), KVM_RUN, 0) < 0) {
      const int err = errno;
      if (err == EINTR || err == EAGAIN) {
        run_->immediate_exit = 0;
        if (sample_requested_.exchange(false)) ++rip_samples_[regs().rip];
        continue;
      }
      fail(state, exit_code::kInternal, std::string("KVM_RUN failed: ") + std::strerror(err));
      break;
    }
    history_.record(*run_);
    if (!handle_exit(bus, state)) break;
  }
  running_.store(false);
}

bool Vcpu::handle_exit(const IoBus& bus, RunState& state) {
  switch (run_->exit_reason) {
    case KVM_EXIT_IO: {
      auto* data = reinterpret_cast<uint8_t*>(run_) + run_->io.data_offset;
      for (uint32_t i = 0; i < run_->io.count; ++i, data += run_->io.size) {
        if (run_->io.direction == KVM_EXIT_IO_OUT) {
          bus.pio_write(run_->io.port, data, run_->io.size);
        } else {
          bus.pio_read(run_->io.port, data, run_->io.size);
        }
      }
      return true;
    }
    case KVM_EXIT_MMIO:
      if (run_->mmio.is_write) {
        bus.mmio_write(run_->mmio.phys_addr, run_->mmio.data, run_->mmio.len);
      } else {
        bus.mmio_read(run_->mmio.phys_addr, run_->mmio.data, run_->mmio.len);
      }
      return true;
    case KVM_EXIT_SHUTDOWN:
      fail(state, exit_code::kTripleFault, "guest shut down (triple fault); " + shutdown_report());
      return false;
    case KVM_EXIT_SYSTEM_EVENT:
      if (run_->system_event.type == KVM_SYSTEM_EVENT_RESET ||
          run_->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
        state.request_stop(exit_code::kOk, "guest requested reset/shutdown");
        return false;
      }
      fail(state, exit_code::kUnhandledExit,
           "unhandled system event type " + std::to_string(run_->system_event.type));
      return false;
    case KVM_EXIT_INTERNAL_ERROR: return handle_internal_error(state);
    case KVM_EXIT_FAIL_ENTRY:
      fail(state, exit_code::kUnhandledExit,
           fmt::format("KVM_EXIT_FAIL_ENTRY, hardware reason {:#x}",
                       static_cast<uint64_t>(run_->fail_entry.hardware_entry_failure_reason)));
      return false;
    default:
      fail(state, exit_code::kUnhandledExit,
           std::string("unhandled VM exit ") + exit_reason_name(run_->exit_reason) + " (" +
               std::to_string(run_->exit_reason) + ")");
      return false;
  }
}

bool Vcpu::handle_internal_error(RunState& state) {
  const uint32_t sub = run_->internal.suberror;
  if (sub == KVM_INTERNAL_ERROR_EMULATION && options_.emulate_int3) {
    // PVM's emulator cannot execute int3 (pvm_quirks.h).
    const kvm_regs r = regs();
    if (emulate_int3(fd_.get(), r, instruction_bytes(r.rip))) {
      ++int3_injections_;
      SPDLOG_DEBUG("vCPU {}: injected #BP for int3 at 0x{:x}", index_, r.rip);
      return true;
    }
  }
  std::ostringstream what;
  what << "KVM_EXIT_INTERNAL_ERROR suberror " << sub
       << (sub == KVM_INTERNAL_ERROR_EMULATION ? " (instruction emulation failed)" : "");
  what << ", data:";
  for (uint32_t i = 0; i < run_->internal.ndata && i < 16; ++i) {
    what << " 0x" << std::hex << run_->internal.data[i] << std::dec;
  }
  fail(state, exit_code::kUnhandledExit, what.str());
  return false;
}

std::vector<uint8_t> Vcpu::instruction_bytes(uint64_t rip) const {
  kvm_translation tr{};
  tr.linear_address = rip;  // 64-bit mode: flat CS, linear == RIP
  if (ioctl(fd_.get(), KVM_TRANSLATE, &tr) < 0 || !tr.valid) return {};
  const uint64_t to_page_end = 0x1000 - (tr.physical_address & 0xfff);
  const uint64_t n = to_page_end < 15 ? to_page_end : 15;
  const uint8_t* p = mem_.translate(tr.physical_address, n);
  return p ? std::vector<uint8_t>(p, p + n) : std::vector<uint8_t>{};
}

std::string Vcpu::describe() const {
  const kvm_regs r = regs();
  const kvm_sregs sr = sregs();
  kvm_mp_state mp{};
  ioctl(fd_.get(), KVM_GET_MP_STATE, &mp);
  static constexpr const char* kMpStates[] = {"runnable", "uninitialized", "init-received",
                                              "halted", "sipi-received"};
  std::ostringstream s;
  s << "vCPU " << index_ << ": RIP 0x" << std::hex << r.rip << " CS 0x" << sr.cs.selector
    << " CR0 0x" << sr.cr0 << std::dec << " mp_state "
    << (mp.mp_state < 5 ? kMpStates[mp.mp_state] : "other");
  return s.str();
}

std::string Vcpu::shutdown_report() const {
  std::string out = "vCPU " + std::to_string(index_) + " " + history_.describe();
  try {
    const kvm_sregs sr = sregs();
    kvm_vcpu_events ev{};
    ioctl(fd_.get(), KVM_GET_VCPU_EVENTS, &ev);
    out += fmt::format(
        "; sregs CR0 {:#x} CR2 {:#x} CR3 {:#x} CR4 {:#x} EFER {:#x} GDT {:#x}/{:#x} IDT "
        "{:#x}/{:#x}; "
        "events: exception {}(vector {}, pending {}) nmi pending {} interrupt injected {}",
        sr.cr0, sr.cr2, sr.cr3, sr.cr4, sr.efer, sr.gdt.base, sr.gdt.limit, sr.idt.base,
        sr.idt.limit, ev.exception.injected, ev.exception.nr, ev.exception.pending, ev.nmi.pending,
        ev.interrupt.injected);
  } catch (const Error&) {
    out += "; sregs unreadable";
  }
  // svm.c shutdown_interception() INITs the vCPU before this exit.
  out +=
      " (on AMD, KVM INITs the vCPU before this exit: RIP 0xfff0 there is the reset state, not the "
      "fault)";
  return out;
}

void Vcpu::fail(RunState& state, int code, const std::string& what) {
  std::string detail = what;
  try {
    const kvm_regs r = regs();
    std::ostringstream s;
    s << what << "; vCPU " << index_ << " RIP 0x" << std::hex << r.rip << " RSP 0x" << r.rsp
      << std::dec << ", instruction bytes: " << hex_bytes(instruction_bytes(r.rip));
    detail = s.str();
  } catch (const Error&) {
    // Registers unreadable: report what we have.
  }
  spdlog::error("{}", detail);
  state.request_stop(code, detail);
}

}  // namespace minivmm
