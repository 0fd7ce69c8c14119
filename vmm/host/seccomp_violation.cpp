#include "vmm/host/seccomp_violation.h"

#include <signal.h>
#include <unistd.h>

#include <cstring>

#include "common/error.h"
#include "vmm/exit_codes.h"
#include "vmm/host/terminal.h"

namespace minivmm {
namespace {

// The thread kind for the report. Thread-local, set once by the thread
// itself before its filter loads; a signal handler can read it (initial-exec
// TLS of the executable needs no allocation) but cannot be passed it.
thread_local const char* t_kind = "unsandboxed";

// Async-signal-safe formatting into a fixed buffer: no stdio, no allocation.
class Line {
 public:
  Line& text(const char* s) {
    while (*s && len_ < sizeof(buf_)) buf_[len_++] = *s++;
    return *this;
  }
  Line& number(unsigned long v, unsigned base) {
    char digits[24];
    size_t n = 0;
    do {
      digits[n++] = "0123456789abcdef"[v % base];
      v /= base;
    } while (v && n < sizeof(digits));
    while (n && len_ < sizeof(buf_)) buf_[len_++] = digits[--n];
    return *this;
  }
  void write_to(int fd) const {
    size_t done = 0;
    while (done < len_) {
      const ssize_t w = ::write(fd, buf_ + done, len_ - done);
      if (w <= 0) return;
      done += static_cast<size_t>(w);
    }
  }

 private:
  char buf_[256];
  size_t len_ = 0;
};

void on_sigsys(int, siginfo_t* info, void*) {
  // si_syscall and si_arch: seccomp(2), SECCOMP_RET_TRAP.
  Line()
      .text("minivmm: seccomp: ")
      .text(t_kind)
      .text(" thread made forbidden syscall ")
      .number(static_cast<unsigned long>(info->si_syscall), 10)
      .text(" (arch 0x")
      .number(info->si_arch, 16)
      .text("; `scmp_sys_resolver N` names it); exiting with code ")
      .number(exit_code::kSeccompViolation, 10)
      .text(" (--no-seccomp turns the sandbox off for debugging)\n")
      .write_to(STDERR_FILENO);
  restore_terminal_now();
  _exit(exit_code::kSeccompViolation);
}

}  // namespace

void install_seccomp_violation_handler() {
  struct sigaction sa {};
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSYS, &sa, nullptr) != 0) throw sys_error("sigaction(SIGSYS)");
}

void note_sandboxed_thread(ThreadKind kind) { t_kind = thread_kind_name(kind); }

}  // namespace minivmm
