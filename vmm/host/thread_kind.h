// The kinds of minivmm's threads: each gets its own seccomp allow-list
// (seccomp_filter.h) and is named in a violation report (seccomp_violation.h).
#pragma once

namespace minivmm {

enum class ThreadKind {
  kVcpu,     // KVM_RUN and the device emulation it calls (UART, virtio-mmio registers)
  kIoLoop,   // the virtio event loop: queue notifications, disk I/O, completions
  kConsole,  // host stdin -> the guest's UART
  kControl,  // the main thread after set-up (waits, then tears down) and the signal watcher
  kApi,      // the control API's socket server (vmm/api/)
};

const char* thread_kind_name(ThreadKind kind);

}  // namespace minivmm
