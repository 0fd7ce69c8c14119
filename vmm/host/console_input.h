// The guest console's input: the host's stdin fed to the guest's UART (with
// `serial.stdin`), on the console thread. Its output side is console_output.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace minivmm {

// Takes up to `len` bytes and returns how many it took (Uart8250::receive:
// its receive buffer is bounded, so it may take fewer, even none).
using ConsoleSink = std::function<size_t(const uint8_t* data, size_t len)>;

// Feeds what `in_fd` delivers to `sink`, in order and without loss, until
// `stop_fd` is readable, `in_fd` reaches EOF or fails (the guest then just
// gets no more input). Bytes the sink could not take yet are offered again
// every 10 ms rather than reading more.
void pump_console_input(int in_fd, int stop_fd, const ConsoleSink& sink);

}  // namespace minivmm
