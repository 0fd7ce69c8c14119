#include "vmm/host/terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>

namespace minivmm {
namespace {

// The one process-wide copy of the saved settings, for restore_terminal_now().
// A static because its callers (a SIGSYS handler, a thread about to _exit)
// cannot reach the RawTerminal object; there is one controlling terminal per
// process, so there is at most one RawTerminal to mirror. `armed` is a
// lock-free atomic, the only kind of shared state a signal handler may read.
// The settings are kept as the kernel's own struct termios (TCGETS), opaque:
// restoring them is then exactly one ioctl(fd, TCSETS), the one call every
// seccomp filter allows. glibc's tcsetattr(TCSANOW) adds a TCGETS to check
// the result, and its struct termios is not the kernel's.
struct EmergencyRestore {
  std::atomic<bool> armed{false};
  int fd = -1;
  // Larger than the kernel's struct termios on any architecture (36 bytes
  // on x86_64, asm/termbits.h); TCGETS/TCSETS copy exactly that many.
  alignas(8) unsigned char kernel_termios[128]{};
};
EmergencyRestore g_emergency;
static_assert(std::atomic<bool>::is_always_lock_free);

}  // namespace

RawTerminal::RawTerminal(int fd) : fd_(fd) {
  if (!isatty(fd) || tcgetattr(fd, &saved_) != 0) return;
  termios raw = saved_;
  // Keep ISIG: Ctrl-C still reaches minivmm as SIGINT (a graceful stop).
  raw.c_iflag &= ~static_cast<tcflag_t>(ICRNL | IXON | INLCR | IGNCR);
  raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | IEXTEN);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  if (::ioctl(fd, TCGETS, g_emergency.kernel_termios) != 0) return;
  g_emergency.fd = fd;
  g_emergency.armed.store(true, std::memory_order_release);
  active_ = tcsetattr(fd, TCSANOW, &raw) == 0;
  if (!active_) g_emergency.armed.store(false, std::memory_order_release);
}

RawTerminal::~RawTerminal() {
  if (!active_) return;
  g_emergency.armed.store(false, std::memory_order_release);
  tcsetattr(fd_, TCSANOW, &saved_);
}

void restore_terminal_now() {
  if (g_emergency.armed.load(std::memory_order_acquire)) {
    ::ioctl(g_emergency.fd, TCSETS, g_emergency.kernel_termios);
  }
}

}  // namespace minivmm
