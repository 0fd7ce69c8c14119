#include "vmm/host/console_input.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "common/unique_fd.h"

namespace minivmm {
namespace {

struct Pipe {
  UniqueFd read_end, write_end;
  Pipe() {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    read_end = UniqueFd(fds[0]);
    write_end = UniqueFd(fds[1]);
  }
};

// A sink like the UART's receive buffer: it takes at most 100 bytes a call,
// and nothing on every other call, so the pump must offer the rest again.
TEST(ConsoleInput, DeliversEveryByteInOrderToASinkThatTakesFewer) {
  Pipe in;
  const UniqueFd stop(eventfd(0, EFD_CLOEXEC));
  const std::string text = "root\nls -l /\n" + std::string(600, 'x');
  ASSERT_EQ(write(in.write_end.get(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
  in.write_end = UniqueFd();  // EOF after the text: the pump returns
  std::string got;
  bool refuse = false;
  pump_console_input(in.read_end.get(), stop.get(), [&](const uint8_t* data, size_t len) {
    refuse = !refuse;
    if (refuse) return size_t{0};
    const size_t n = std::min<size_t>(len, 100);
    got.append(reinterpret_cast<const char*>(data), n);
    return n;
  });
  EXPECT_EQ(got, text);
}

TEST(ConsoleInput, ReturnsWhenStopped) {
  Pipe in;  // never written to, never closed
  const UniqueFd stop(eventfd(0, EFD_CLOEXEC));
  std::thread stopper([&] {
    const uint64_t one = 1;
    EXPECT_EQ(write(stop.get(), &one, sizeof(one)), 8);
  });
  size_t calls = 0;
  pump_console_input(in.read_end.get(), stop.get(), [&](const uint8_t*, size_t len) {
    ++calls;
    return len;
  });
  stopper.join();
  EXPECT_EQ(calls, 0u);
}

}  // namespace
}  // namespace minivmm
