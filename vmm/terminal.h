// Puts the controlling terminal in raw mode for an interactive guest console
// and restores the saved settings when destroyed (RAII), so an exit on any
// path leaves the user's shell usable.
#pragma once

#include <termios.h>

namespace minivmm {

class RawTerminal {
 public:
  explicit RawTerminal(int fd);  // no-op unless fd is a tty
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;
  bool active() const { return active_; }

 private:
  int fd_;
  bool active_ = false;
  termios saved_{};
};

}  // namespace minivmm
