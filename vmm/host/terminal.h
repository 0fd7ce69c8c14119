// Puts the controlling terminal in raw mode for an interactive guest console
// and restores the saved settings when destroyed (RAII), so an exit on any
// path leaves the user's shell usable. Paths that end the process without
// unwinding (a forced stop, a seccomp violation's SIGSYS handler) call
// restore_terminal_now() first.
#pragma once

#include <termios.h>

namespace minivmm {

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
// safe (tcsetattr(3) is on signal-safety(7)'s list): callable from a signal
// handler or right before _exit.
void restore_terminal_now();

}  // namespace minivmm
