#include "vmm/host/console_output.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace minivmm {
namespace {

// No O_TRUNC at open: only a regular file is emptied, so a path that turned
// into something else since the start-up checks (vmm/config/file_roles.h)
// is refused untouched. O_NONBLOCK: open(2) of a FIFO without a reader
// would block (fifo(7)); cleared again for the regular file.
UniqueFd open_log_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644));
  if (!fd) throw sys_error("cannot create serial log '" + path + "'");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw sys_error("serial log '" + path + "': fstat");
  if (!S_ISREG(st.st_mode)) throw Error("serial log '" + path + "' is not a regular file");
  if (::ftruncate(fd.get(), 0) != 0) throw sys_error("cannot empty serial log '" + path + "'");
  if (::fcntl(fd.get(), F_SETFL, 0) != 0) throw sys_error("serial log '" + path + "': F_SETFL");
  return fd;
}

}  // namespace

ConsoleOutput::ConsoleOutput(const std::string& log_path, std::function<void()> on_closed)
    : fd_(STDOUT_FILENO), on_closed_(std::move(on_closed)) {
  if (!log_path.empty()) {
    file_ = open_log_file(log_path);
    fd_ = file_.get();
  }
  unbuffered_ = isatty(fd_);
}

ConsoleOutput::~ConsoleOutput() { flush(); }

void ConsoleOutput::put(uint8_t byte) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  buffer_.push_back(static_cast<char>(byte));
  if (unbuffered_ || byte == '\n' || buffer_.size() >= 4096) flush_locked();
}

void ConsoleOutput::flush() {
  std::lock_guard lock(mu_);
  flush_locked();
}

bool ConsoleOutput::wait_writable(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLOUT, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (n > 0) return true;  // writable, or POLLERR/POLLHUP: write() reports which
    if (n == 0) return false;
    if (errno != EINTR) return true;  // let write() report the error
  }
}

void ConsoleOutput::drop_buffer() {
  if (!stalled_) {
    spdlog::warn(
        "console output: the reader has not taken any output for {} ms: dropping "
        "guest console output until it reads again",
        kMaxStall.count());
    stalled_ = true;
  }
  dropped_ += buffer_.size();
  buffer_.clear();
}

void ConsoleOutput::flush_locked() {
  size_t done = 0;
  while (done < buffer_.size() && !closed_) {
    if (!wait_writable(stalled_ ? std::chrono::milliseconds(0) : kMaxStall)) {
      buffer_.erase(0, done);
      drop_buffer();
      return;
    }
    // At most PIPE_BUF per write: after POLLOUT a pipe takes that much
    // without blocking (pipe(7)), so a slow reader cannot block us here.
    const size_t chunk = std::min<size_t>(buffer_.size() - done, PIPE_BUF);
    const ssize_t n = ::write(fd_, buffer_.data() + done, chunk);
    if (n > 0) {
      done += static_cast<size_t>(n);
      if (stalled_) {
        spdlog::info(
            "console output: the reader is back; {} bytes of guest console output were "
            "dropped",
            dropped_);
        stalled_ = false;
        dropped_ = 0;
      }
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0 && errno == EPIPE) {
      closed_ = true;
      spdlog::warn("console output: the reader has gone (EPIPE): no more guest console output");
      if (on_closed_) on_closed_();
      break;
    }
    // Any other failure (ENOSPC on a log file, a closed stdout): drop this
    // buffer, try again with the next one; warn once.
    if (!write_failed_) {
      spdlog::warn("console output: write failed ({}): dropping guest console output",
                   n < 0 ? std::strerror(errno) : "wrote 0 bytes");
      write_failed_ = true;
    }
    break;
  }
  buffer_.clear();
}

}  // namespace minivmm
