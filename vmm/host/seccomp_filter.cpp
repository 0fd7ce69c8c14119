#include "vmm/host/seccomp_filter.h"

#include <linux/kvm.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <optional>
#include <vector>

#include "common/error.h"
#include "vmm/host/seccomp_violation.h"
#include "vmm/host/terminal.h"

namespace minivmm {
namespace {

// One allowed form of a syscall: every comparison in `all_of` holds
// (seccomp_rule_add(3) ANDs the comparisons of one rule and ORs the rules);
// none: allowed with any arguments. Comparisons are on the full 64 bits.
struct Rule {
  const char* name;
  std::vector<scmp_arg_cmp> all_of;
};

struct Policy {
  std::vector<Rule> rules;
};

// Spelled out rather than SCMP_A0() and friends, whose compound literals
// leave datum_b to -Wmissing-field-initializers under clang.
scmp_arg_cmp arg_eq(unsigned arg, scmp_datum_t value) {
  return {.arg = arg, .op = SCMP_CMP_EQ, .datum_a = value, .datum_b = 0};
}

scmp_arg_cmp arg_masked_eq(unsigned arg, scmp_datum_t mask, scmp_datum_t value) {
  return {.arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = mask, .datum_b = value};
}

// Every thread: glibc's malloc (brk, mmap and friends), std::mutex and
// condition variables (futex), spdlog's timestamps and log lines to stderr
// (clock_gettime when the vDSO falls back, write), eventfd signals (write),
// the vCPU interrupt signal's handler (rt_sigreturn), thread exit (madvise of
// the stack, exit) and process exit. abort() (raise: tgkill, rt_sigaction)
// stays possible so a failed assertion still reports itself.
// One by one, not vector::insert of an initializer list: GCC 12 at -O3
// reports a false -Wstringop-overflow in that insert (Release builds).
void allow(Policy& p, std::initializer_list<const char*> names) {
  for (const char* name : names) p.rules.push_back({name, {}});
}

// `name` with argument `arg` equal to any one of `values`, and `also`.
void allow_each(Policy& p, const char* name, unsigned arg,
                std::initializer_list<scmp_datum_t> values,
                std::initializer_list<scmp_arg_cmp> also = {}) {
  for (scmp_datum_t v : values) {
    Rule r{name, {arg_eq(arg, v)}};
    for (const scmp_arg_cmp& c : also) r.all_of.push_back(c);
    p.rules.push_back(std::move(r));
  }
}

// tgkill(tgid, tid, sig) only to a thread of this process (`pid`: every
// thread shares it) and only with `sig`: no thread may signal another
// process, whatever its tid.
void allow_tgkill(Policy& p, pid_t pid, int sig) {
  p.rules.push_back(
      {"tgkill",
       {arg_eq(0, static_cast<scmp_datum_t>(pid)), arg_eq(2, static_cast<scmp_datum_t>(sig))}});
}

void add_common(Policy& p, pid_t pid) {
  allow(p, {"brk", "munmap", "madvise", "mremap",  // malloc, stacks
            "futex", "sched_yield",                // mutexes, condvars
            "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "rt_sigreturn",
            "rt_sigprocmask", "restart_syscall",       // signals
            "getpid", "gettid", "exit", "exit_group",  // ids, exit
            "write", "writev"});                       // logs, eventfds
  // Only the calling thread's own signal stack; sanitizer runtimes (ASan)
  // remove theirs at thread exit, after the filter is in.
  allow(p, {"sigaltstack"});
  allow_tgkill(p, pid, SIGABRT);
  allow_each(p, "rt_sigaction", 0, {SIGABRT});
  // New memory, never executable: no thread maps code after set-up.
  p.rules.push_back({"mmap", {arg_masked_eq(2, PROT_EXEC, 0)}});
  p.rules.push_back({"mprotect", {arg_masked_eq(2, PROT_EXEC, 0)}});
  // The SIGSYS handler restores the console's terminal in whichever thread
  // trapped (seccomp_violation.h): exactly that call, ioctl(0, TCSETS)
  // (restore_terminal_now, terminal.h). Refused, it would trap again inside
  // the handler with SIGSYS blocked, and the kernel kills the process
  // (seccomp(2), SECCOMP_RET_TRAP) with the terminal left raw.
  allow_each(p, "ioctl", 1, {TCSETS}, {arg_eq(0, kConsoleTerminalFd)});
}

Policy policy_for(ThreadKind kind, pid_t pid) {
  Policy p;
  add_common(p, pid);
  switch (kind) {
    case ThreadKind::kVcpu:
      // poll: the console output's bounded wait (console_output.h).
      allow(p, {"poll", "ppoll"});
      // The vCPU ioctls the run loop makes (vcpu.cpp): KVM_RUN, register
      // access for RIP sampling, int3 injection and diagnostics, KVM_IRQ_LINE
      // on the VM fd when the UART raises its interrupt, KVM_KVMCLOCK_CTRL
      // when it pauses (vcpu_pause.h).
      allow_each(p, "ioctl", 1,
                 {KVM_RUN, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS,
                  KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_TRANSLATE, KVM_GET_MP_STATE,
                  KVM_IRQ_LINE, KVM_KVMCLOCK_CTRL});
      break;
    case ThreadKind::kIoLoop:
      // The epoll loop and eventfds, the io_uring engine (io_uring_enter:
      // submit and reap; the only kind that owns a ring), the sync engine
      // (preadv2/pwritev2, fdatasync, fallocate for discard/write-zeroes),
      // the write log (writev).
      allow(p, {"epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "read", "readv",
                "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "fdatasync",
                "fsync", "fallocate", "io_uring_enter", "close"});
      break;
    case ThreadKind::kConsole:
      // Reads stdin, raises the UART's interrupt (KVM_IRQ_LINE on the VM fd).
      allow(p, {"read", "poll", "ppoll"});
      allow_each(p, "ioctl", 1, {KVM_IRQ_LINE});
      break;
    case ThreadKind::kControl:
      // Waits (poll, the signalfd), interrupts vCPUs (tgkill with the interrupt
      // signal), reads vCPU state for the exit diagnostics, restores the
      // terminal (TCSETS*), tears down (close, munmap). No io_uring_enter:
      // the disks, their rings with them, are drained and closed on the
      // I/O loop's thread.
      allow(p, {"read", "poll", "ppoll", "close"});
      allow_tgkill(p, pid, SIGRTMIN);
      allow_each(p, "ioctl", 1,
                 {KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_MP_STATE, TCGETS, TCSETS, TCSETSW, TCSETSF});
      break;
    case ThreadKind::kApi:
      // The control API's server (vmm/api/api_server.h): its epoll set and
      // eventfd, accept4 on the listening socket it was handed, read/write/
      // close on the connections; unlink of its own socket path at exit;
      // tgkill with the interrupt signal to take the vCPUs out of KVM_RUN
      // for a pause. Nothing that opens, creates or connects.
      allow(p, {"epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "accept4", "read",
                "shutdown", "close", "unlink"});
      allow_tgkill(p, pid, SIGRTMIN);
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
  // A syscall of another ABI than the filter's (int 0x80's i386 table, or
  // x32 numbers, which libseccomp sends the same way on x86_64) traps like
  // any other forbidden call; libseccomp's default kills only the calling
  // thread, leaving the VMM hung without a word.
  const int rc = seccomp_attr_set(f.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP);
  if (rc < 0) throw sys_error("seccomp_attr_set(SCMP_FLTATR_ACT_BADARCH)", -rc);
  for (const Rule& r : policy_for(kind, getpid()).rules) {
    const auto nr = resolve(r.name);
    if (!nr) continue;
    add_rule(f.get(), r.name, *nr, static_cast<unsigned>(r.all_of.size()), r.all_of.data());
  }
  return f;
}

// glibc opens /proc/sys/vm/overcommit_memory the first time any thread's
// arena heap shrinks (check_may_shrink_heap, malloc/arena.c and
// sysdeps/unix/sysv/linux/malloc-sysdep.h) and caches the answer for the
// process. A sandboxed thread that frees enough memory (the API server's
// 64 KiB request buffers) would make that first openat under its filter
// and trap. Freeing 1 MiB of heap chunks here, before the filter, makes
// the read happen now (in this thread's arena, if it is not the main one:
// one thread suffices for the whole process).
void prime_heap_shrink_check() {
  constexpr size_t kChunk = 8 << 10;  // below the mmap threshold: from the arena
  std::vector<std::unique_ptr<char[]>> chunks;
  for (size_t i = 0; i < 128; ++i) {
    chunks.push_back(std::make_unique<char[]>(kChunk));
    chunks.back()[0] = 1;
  }
  chunks.clear();
}

}  // namespace

std::vector<std::string> seccomp_allowed_syscalls(ThreadKind kind) {
  std::vector<std::string> names;
  for (const Rule& r : policy_for(kind, getpid()).rules) {
    std::string name = r.all_of.empty() ? r.name : std::string(r.name) + "(conditional)";
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

void install_seccomp_filter(ThreadKind kind) {
  prime_heap_shrink_check();
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
