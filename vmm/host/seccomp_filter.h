// minivmm's seccomp sandbox (seccomp(2), built with libseccomp). Each kind
// of thread gets its own allow-list, installed by the thread itself once
// set-up is over (a filter applies to the calling thread and the threads it
// starts later). Anything else traps (SCMP_ACT_TRAP): the SIGSYS handler
// (seccomp_violation.h) names the thread kind and the syscall number and
// ends the process with exit_code::kSeccompViolation.
#pragma once

#include <string>
#include <vector>

#include "vmm/host/thread_kind.h"

namespace minivmm {

// The syscall names `kind` may make without conditions, and those allowed
// only with particular arguments (ioctl requests, tgkill/rt_sigaction
// signals); for tests and documentation.
std::vector<std::string> seccomp_allowed_syscalls(ThreadKind kind);

// Loads the filter for `kind` on the calling thread (sets no_new_privs for
// it, as seccomp(2) requires without CAP_SYS_ADMIN). Throws Error with the
// reason if the kernel refuses (no CONFIG_SECCOMP_FILTER: use --no-seccomp).
void install_seccomp_filter(ThreadKind kind);

}  // namespace minivmm
