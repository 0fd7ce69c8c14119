#include "vmm/host/console_input.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace minivmm {

void pump_console_input(int in_fd, int stop_fd, const ConsoleSink& sink) {
  uint8_t buf[256];
  size_t len = 0, off = 0;
  while (true) {
    pollfd fds[2] = {{stop_fd, POLLIN, 0}, {in_fd, POLLIN, 0}};
    const bool pending = off < len;
    // With bytes the sink could not take yet, retry shortly instead of reading more.
    const int n = poll(fds, pending ? 1 : 2, pending ? 10 : -1);
    if (n < 0 && errno != EINTR) return;
    if (fds[0].revents) return;
    if (pending) {
      off += sink(buf + off, len - off);
      continue;
    }
    if (fds[1].revents & (POLLERR | POLLNVAL)) return;  // no usable input
    if (fds[1].revents & (POLLIN | POLLHUP)) {
      const ssize_t r = read(in_fd, buf, sizeof(buf));
      if (r <= 0) return;  // EOF: the guest simply gets no more input
      len = static_cast<size_t>(r);
      off = sink(buf, len);
    }
  }
}

}  // namespace minivmm
