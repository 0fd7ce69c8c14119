// The stack size of every thread the VMM starts (vCPUs, I/O loops, console,
// signal watcher). glibc's default is 8 MiB (RLIMIT_STACK). Where
// transparent huge pages are "always" (Debian's kernels), a stack mapping
// that holds a 2 MiB-aligned range gets a 2 MiB huge page at its first
// touch: 2 MiB of RSS for a thread that uses a few KiB, seen in the sandbox
// as the VMM's memory beside guest RAM going from 5.5 to 7.4 MiB depending
// on where the stacks landed. A mapping under 2 MiB can hold no aligned
// 2 MiB range, so it never gets one.
#pragma once

#include <cstddef>

namespace minivmm {

// Far above what any of our threads uses (no recursion; the deepest path is
// an MMIO exit into virtio parsing and logging), and under 2 MiB.
inline constexpr size_t kThreadStackBytes = size_t{1} << 20;

// Sets the default stack size of the threads created after the call
// (pthread_setattr_default_np(3), which std::thread uses). Call it before
// starting any thread. Throws minivmm::Error on failure.
void set_default_thread_stack_size(size_t bytes);

}  // namespace minivmm
