// What happens when a sandboxed thread makes a forbidden syscall: the
// filter's SCMP_ACT_TRAP raises SIGSYS in that thread (seccomp(2),
// SECCOMP_RET_TRAP), also for a syscall of a foreign ABI (int 0x80, x32),
// and this handler writes one line to stderr with write(2) only
// (async-signal-safe, signal-safety(7)):
//   minivmm: seccomp: vcpu thread made forbidden syscall 41 (arch 0xc000003e ...
//   minivmm: seccomp: vcpu thread made forbidden syscall 20 of a foreign ABI (arch 0x40000003 ...
// restores the terminal (a call every filter allows) and calls
// _exit(exit_code::kSeccompViolation).
#pragma once

#include "vmm/host/thread_kind.h"

namespace minivmm {

// Installs the SIGSYS handler for the whole process. Call before filters load.
void install_seccomp_violation_handler();

// Records the calling thread's kind for the report (install_seccomp_filter calls it).
void note_sandboxed_thread(ThreadKind kind);

}  // namespace minivmm
