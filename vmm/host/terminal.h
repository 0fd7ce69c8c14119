// Puts the controlling terminal in raw mode for an interactive guest console
// and restores the saved settings when destroyed (RAII), so an exit on any
// path leaves the user's shell usable. Paths that end the process without
// unwinding (a forced stop, a seccomp violation's SIGSYS handler) call
// restore_terminal_now() first.
#pragma once

#include <termios.h>
#include <unistd.h>

namespace minivmm {

// The terminal minivmm puts in raw mode: the guest console's stdin. Every
// seccomp filter allows restoring exactly this fd (seccomp_filter.cpp), so
// restore_terminal_now() works from whichever thread traps.
inline constexpr int kConsoleTerminalFd = STDIN_FILENO;

class RawTerminal {
 public:
  explicit RawTerminal(int fd);  // no-op unless fd is a tty
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_;
  bool active_ = false;
  termios saved_{};
};

// Restores the settings saved by the live RawTerminal, if any. Async-signal-
// safe: one bare ioctl(fd, TCSETS) (what tcsetattr(TCSANOW), which is on
// signal-safety(7)'s list, does), no libc state; callable from a signal
// handler or right before _exit. Every seccomp filter allows exactly that
// call for kConsoleTerminalFd.
void restore_terminal_now();

}  // namespace minivmm
