// Where the guest's serial console goes: stdout or a log file. Output is
// line-buffered for files and pipes (one write per line keeps logs cheap and
// whole), unbuffered for a terminal (an interactive prompt has no newline).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "common/unique_fd.h"

namespace minivmm {

class ConsoleOutput {
 public:
  // Empty path: stdout. Throws Error if the log file cannot be created.
  explicit ConsoleOutput(const std::string& log_path);
  ~ConsoleOutput();
  void put(uint8_t byte);
  void flush();

 private:
  void flush_locked();
  UniqueFd file_;
  int fd_;
  bool unbuffered_;
  std::mutex mu_;
  std::string buffer_;
};

}  // namespace minivmm
