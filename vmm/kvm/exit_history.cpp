#include "vmm/kvm/exit_history.h"

#include <fmt/format.h>

namespace minivmm {

const char* exit_reason_name(uint32_t reason) {
  switch (reason) {
    case KVM_EXIT_UNKNOWN: return "KVM_EXIT_UNKNOWN";
    case KVM_EXIT_EXCEPTION: return "KVM_EXIT_EXCEPTION";
    case KVM_EXIT_IO: return "KVM_EXIT_IO";
    case KVM_EXIT_HYPERCALL: return "KVM_EXIT_HYPERCALL";
    case KVM_EXIT_DEBUG: return "KVM_EXIT_DEBUG";
    case KVM_EXIT_HLT: return "KVM_EXIT_HLT";
    case KVM_EXIT_MMIO: return "KVM_EXIT_MMIO";
    case KVM_EXIT_IRQ_WINDOW_OPEN: return "KVM_EXIT_IRQ_WINDOW_OPEN";
    case KVM_EXIT_SHUTDOWN: return "KVM_EXIT_SHUTDOWN";
    case KVM_EXIT_FAIL_ENTRY: return "KVM_EXIT_FAIL_ENTRY";
    case KVM_EXIT_INTR: return "KVM_EXIT_INTR";
    case KVM_EXIT_INTERNAL_ERROR: return "KVM_EXIT_INTERNAL_ERROR";
    case KVM_EXIT_SYSTEM_EVENT: return "KVM_EXIT_SYSTEM_EVENT";
    case KVM_EXIT_X86_RDMSR: return "KVM_EXIT_X86_RDMSR";
    case KVM_EXIT_X86_WRMSR: return "KVM_EXIT_X86_WRMSR";
    default: return "unknown exit reason";
  }
}

void ExitHistory::record(const kvm_run& run) {
  Entry& e = entries_[count_ % kSize];
  e.reason = run.exit_reason;
  e.where = 0;
  e.write = false;
  if (run.exit_reason == KVM_EXIT_IO) {
    e.where = run.io.port;
    e.write = run.io.direction == KVM_EXIT_IO_OUT;
  } else if (run.exit_reason == KVM_EXIT_MMIO) {
    e.where = run.mmio.phys_addr;
    e.write = run.mmio.is_write != 0;
  }
  ++count_;
}

std::string ExitHistory::describe() const {
  std::string out = fmt::format("{} exits", count_);
  if (count_ == 0) return out;
  out += "; last (oldest first):";
  const uint64_t first = count_ > kSize ? count_ - kSize : 0;
  for (uint64_t i = first; i < count_; ++i) {
    const Entry& e = entries_[i % kSize];
    out += ' ';
    out += exit_reason_name(e.reason);
    if (e.reason == KVM_EXIT_IO) out += fmt::format(" {} {:#x}", e.write ? "out" : "in", e.where);
    if (e.reason == KVM_EXIT_MMIO)
      out += fmt::format(" {} {:#x}", e.write ? "write" : "read", e.where);
    if (i + 1 < count_) out += ',';
  }
  return out;
}

}  // namespace minivmm
