#include "vmm/console_output.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/error.h"

namespace minivmm {

ConsoleOutput::ConsoleOutput(const std::string& log_path) : fd_(STDOUT_FILENO) {
  if (!log_path.empty()) {
    file_.reset(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!file_) throw sys_error("cannot create serial log file '" + log_path + "'");
    fd_ = file_.get();
  }
  unbuffered_ = isatty(fd_);
}

ConsoleOutput::~ConsoleOutput() { flush(); }

void ConsoleOutput::put(uint8_t byte) {
  std::lock_guard lock(mu_);
  buffer_.push_back(static_cast<char>(byte));
  if (unbuffered_ || byte == '\n' || buffer_.size() >= 4096) flush_locked();
}

void ConsoleOutput::flush() {
  std::lock_guard lock(mu_);
  flush_locked();
}

void ConsoleOutput::flush_locked() {
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // console gone (closed pipe): drop rather than stall the vCPU
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
}

}  // namespace minivmm
