#include "vmm/host/seccomp_violation.h"

#include <linux/audit.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "common/error.h"
#include "vmm/host/terminal.h"
#include "vmm/run/exit_codes.h"

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

// The syscall ABI this build's filters are for (AUDIT_ARCH_*, linux/audit.h;
// the si_arch of a SIGSYS).
constexpr unsigned kNativeArch =
#if defined(__x86_64__)
    AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
    AUDIT_ARCH_AARCH64;
#else
#error "minivmm's seccomp report knows x86_64 and aarch64 only"
#endif

// How the trapped syscall is described: its number in its own ABI's table.
// The filter traps syscalls of a foreign ABI too (int 0x80's i386 table on
// x86_64; x32 numbers, which carry __X32_SYSCALL_BIT): a number alone would
// name the wrong syscall.
void describe_syscall(Line& line, const siginfo_t& info) {
  const auto nr = static_cast<unsigned long>(static_cast<unsigned>(info.si_syscall));
  if (info.si_arch != kNativeArch) {
    line.text("forbidden syscall ")
        .number(nr, 10)
        .text(" of a foreign ABI (arch 0x")
        .number(info.si_arch, 16)
        .text(", not this build's 0x")
        .number(kNativeArch, 16)
        .text("; `scmp_sys_resolver -a ARCH N` names it)");
    return;
  }
#ifdef __X32_SYSCALL_BIT
  if (nr & __X32_SYSCALL_BIT) {
    line.text("forbidden syscall ")
        .number(nr & ~static_cast<unsigned long>(__X32_SYSCALL_BIT), 10)
        .text(" of the x32 ABI (number 0x")
        .number(nr, 16)
        .text("; `scmp_sys_resolver -a x32 N` names it)");
    return;
  }
#endif
  line.text("forbidden syscall ")
      .number(nr, 10)
      .text(" (arch 0x")
      .number(info.si_arch, 16)
      .text("; `scmp_sys_resolver N` names it)");
}

void on_sigsys(int, siginfo_t* info, void*) {
  // si_syscall and si_arch: seccomp(2), SECCOMP_RET_TRAP.
  Line line;
  line.text("minivmm: seccomp: ").text(t_kind).text(" thread made ");
  describe_syscall(line, *info);
  line.text("; exiting with code ")
      .number(exit_code::kSeccompViolation, 10)
      .text(" (--no-seccomp turns the sandbox off for debugging)\n")
      .write_to(STDERR_FILENO);
  // Allowed in every filter (seccomp_filter.cpp): a second trap here, with
  // SIGSYS blocked, would have the kernel kill the process instead.
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
