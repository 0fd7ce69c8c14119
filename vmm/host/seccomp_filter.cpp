#include "vmm/host/seccomp_filter.h"

#include <linux/kvm.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cstring>
#include <initializer_list>
#include <memory>
#include <optional>

#include "common/error.h"
#include "vmm/host/seccomp_violation.h"

namespace minivmm {
namespace {

// One syscall allowed only when argument `arg` equals one of `values`
// (seccomp_rule_add(3): one rule per value, SCMP_CMP_EQ on the full 64 bits).
struct ArgRule {
  const char* name;
  unsigned arg;
  std::vector<scmp_datum_t> values;
};

// One syscall allowed only when (argument `arg` & mask) == value
// (SCMP_CMP_MASKED_EQ).
struct MaskedRule {
  const char* name;
  unsigned arg;
  scmp_datum_t mask;
  scmp_datum_t value;
};

struct Policy {
  std::vector<const char*> always;
  std::vector<ArgRule> conditional;
  std::vector<MaskedRule> masked;
};

// Every thread: glibc's malloc (brk, mmap and friends), std::mutex and
// condition variables (futex), spdlog's timestamps and log lines to stderr
// (clock_gettime when the vDSO falls back, write), eventfd signals (write),
// the vCPU interrupt signal's handler (rt_sigreturn), thread exit (madvise of
// the stack, exit) and process exit. abort() (raise: tgkill, rt_sigaction)
// stays possible so a failed assertion still reports itself.
// One by one, not vector::insert of an initializer list: GCC 12 at -O3
// reports a false -Wstringop-overflow in that insert (Release builds).
void allow(Policy& p, std::initializer_list<const char*> names) {
  for (const char* name : names) p.always.push_back(name);
}

void add_common(Policy& p) {
  allow(p, {"brk", "munmap", "madvise", "mremap",  // malloc, stacks
            "futex", "sched_yield",                // mutexes, condvars
            "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "rt_sigreturn",
            "rt_sigprocmask", "restart_syscall",       // signals
            "getpid", "gettid", "exit", "exit_group",  // ids, exit
            "write", "writev"});                       // logs, eventfds
  // Only the calling thread's own signal stack; sanitizer runtimes (ASan)
  // remove theirs at thread exit, after the filter is in.
  p.always.push_back("sigaltstack");
  p.conditional.push_back({"tgkill", 2, {SIGABRT}});
  p.conditional.push_back({"rt_sigaction", 0, {SIGABRT}});
  // New memory, never executable: no thread maps code after set-up.
  p.masked.push_back({"mmap", 2, PROT_EXEC, 0});
  p.masked.push_back({"mprotect", 2, PROT_EXEC, 0});
}

// The vCPU ioctls the run loop makes (vcpu.cpp): KVM_RUN, register access
// for RIP sampling, int3 injection and diagnostics, KVM_IRQ_LINE on the VM
// fd when the UART raises its interrupt.
const std::vector<scmp_datum_t> kVcpuIoctls = {
    KVM_RUN,          KVM_GET_REGS,        KVM_SET_REGS,        KVM_GET_SREGS,
    KVM_SET_SREGS,    KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_TRANSLATE,
    KVM_GET_MP_STATE, KVM_IRQ_LINE};

Policy policy_for(ThreadKind kind) {
  Policy p;
  add_common(p);
  switch (kind) {
    case ThreadKind::kVcpu:
      // poll: the console output's bounded wait (console_output.h).
      allow(p, {"poll", "ppoll"});
      p.conditional.push_back({"ioctl", 1, kVcpuIoctls});
      break;
    case ThreadKind::kIoLoop:
      // The epoll loop and eventfds, the io_uring engine (io_uring_enter:
      // submit and reap), the sync engine (preadv2/pwritev2, fdatasync,
      // fallocate for discard/write-zeroes), the write log (writev).
      allow(p, {"epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "read", "readv",
                "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "fdatasync",
                "fsync", "fallocate", "io_uring_enter", "close"});
      break;
    case ThreadKind::kConsole:
      // Reads stdin, raises the UART's interrupt (KVM_IRQ_LINE on the VM fd).
      allow(p, {"read", "poll", "ppoll"});
      p.conditional.push_back({"ioctl", 1, {KVM_IRQ_LINE}});
      break;
    case ThreadKind::kControl:
      // Waits (poll, the signalfd), interrupts vCPUs (tgkill with the interrupt
      // signal), reads vCPU state for the exit diagnostics, restores the
      // terminal (TCSETS*), tears down (close, munmap; io_uring_enter while
      // the io_uring engine's destructor reaps what is left in the ring).
      allow(p, {"read", "poll", "ppoll", "close", "io_uring_enter"});
      p.conditional.push_back({"tgkill", 2, {static_cast<scmp_datum_t>(SIGRTMIN)}});
      p.conditional.push_back(
          {"ioctl",
           1,
           {KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_MP_STATE, TCGETS, TCSETS, TCSETSW, TCSETSF}});
      break;
  }
  return p;
}

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Filter = std::unique_ptr<void, FilterDeleter>;

// The syscall's number on this architecture, or nullopt where it does not
// exist (libseccomp knows each arch's table: "poll" is absent on arm64).
std::optional<int> resolve(const char* name) {
  const int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR || nr < 0) return std::nullopt;
  return nr;
}

void add_rule(scmp_filter_ctx ctx, const char* name, int nr, unsigned count,
              const scmp_arg_cmp* cmp) {
  const int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, count, cmp);
  if (rc < 0) throw sys_error(std::string("seccomp_rule_add(") + name + ")", -rc);
}

Filter build_filter(ThreadKind kind) {
  Filter f(seccomp_init(SCMP_ACT_TRAP));
  if (!f) throw Error("seccomp_init failed");
  const Policy p = policy_for(kind);
  for (const char* name : p.always) {
    if (auto nr = resolve(name)) add_rule(f.get(), name, *nr, 0, nullptr);
  }
  for (const ArgRule& r : p.conditional) {
    const auto nr = resolve(r.name);
    if (!nr) continue;
    for (scmp_datum_t v : r.values) {
      // Spelled out rather than SCMP_CMP(), whose compound literal leaves
      // datum_b to -Wmissing-field-initializers under clang.
      const scmp_arg_cmp cmp{.arg = r.arg, .op = SCMP_CMP_EQ, .datum_a = v, .datum_b = 0};
      add_rule(f.get(), r.name, *nr, 1, &cmp);
    }
  }
  for (const MaskedRule& r : p.masked) {
    const auto nr = resolve(r.name);
    if (!nr) continue;
    const scmp_arg_cmp cmp{.arg = r.arg,
                           .op = SCMP_CMP_MASKED_EQ,
                           .datum_a = r.mask,
                           .datum_b = r.value};
    add_rule(f.get(), r.name, *nr, 1, &cmp);
  }
  return f;
}

}  // namespace

const char* thread_kind_name(ThreadKind kind) {
  switch (kind) {
    case ThreadKind::kVcpu: return "vcpu";
    case ThreadKind::kIoLoop: return "io-loop";
    case ThreadKind::kConsole: return "console";
    case ThreadKind::kControl: return "control";
  }
  return "unknown";
}

std::vector<std::string> seccomp_allowed_syscalls(ThreadKind kind) {
  const Policy p = policy_for(kind);
  std::vector<std::string> names(p.always.begin(), p.always.end());
  for (const ArgRule& r : p.conditional) names.push_back(std::string(r.name) + "(conditional)");
  for (const MaskedRule& r : p.masked) names.push_back(std::string(r.name) + "(conditional)");
  return names;
}

void install_seccomp_filter(ThreadKind kind) {
  const Filter f = build_filter(kind);
  note_sandboxed_thread(kind);
  const int rc = seccomp_load(f.get());
  if (rc < 0) {
    throw sys_error(std::string("loading the seccomp filter for the ") + thread_kind_name(kind) +
                        " thread (a kernel without CONFIG_SECCOMP_FILTER? --no-seccomp runs "
                        "without the sandbox)",
                    -rc);
  }
}

}  // namespace minivmm
