// Where the guest's serial console goes: stdout or a log file. Output is
// line-buffered for files and pipes (one write per line keeps logs cheap and
// whole), unbuffered for a terminal (an interactive prompt has no newline).
//
// Console output never kills or stalls the VMM:
// - SIGPIPE is ignored process-wide (main.cpp), so a reader that went away
//   shows up here as EPIPE (write(2)): output stops for good and `on_closed`
//   runs once (minivmm stops the guest gracefully, as for SIGTERM).
// - A reader that stops reading (full pipe, stuck terminal) holds a vCPU for
//   at most kMaxStall: then output is dropped, with a warning, until the
//   reader drains it again.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "common/unique_fd.h"

namespace minivmm {

class ConsoleOutput {
 public:
  static constexpr std::chrono::milliseconds kMaxStall{1000};

  // Empty path: stdout. Throws Error if the log file cannot be created or is
  // not a regular file (which is then left as it was).
  // `on_closed` runs (on the writing thread, once) when the reader has gone.
  explicit ConsoleOutput(const std::string& log_path, std::function<void()> on_closed = {});
  ~ConsoleOutput();
  void put(uint8_t byte);
  void flush();

 private:
  void flush_locked();
  // Waits until fd_ takes data: true if it does, false after `timeout`.
  bool wait_writable(std::chrono::milliseconds timeout) const;
  void drop_buffer();

  UniqueFd file_;
  int fd_;
  bool unbuffered_;
  std::function<void()> on_closed_;
  std::mutex mu_;
  std::string buffer_;
  bool closed_ = false;        // EPIPE seen: never write again
  bool stalled_ = false;       // the last wait timed out: do not wait again until a write succeeds
  uint64_t dropped_ = 0;       // bytes dropped since the stall began
  bool write_failed_ = false;  // another write error was logged
};

}  // namespace minivmm
