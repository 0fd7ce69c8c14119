#include "vmm/host/stop_signals.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>

#include "common/error.h"
#include "devices/virtio_blk/ring_report.h"
#include "storage/disk_stats.h"
#include "vmm/host/terminal.h"
#include "vmm/run/exit_codes.h"

namespace minivmm {
namespace {

sigset_t stop_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);  // not a stop: logs every disk's stats line
  return set;
}

UniqueFd block_and_open_signalfd() {
  const sigset_t set = stop_signal_set();
  if (int err = pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0) {
    throw sys_error("pthread_sigmask(SIG_BLOCK, SIGINT|SIGTERM|SIGUSR1)", err);
  }
  UniqueFd fd(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd) throw sys_error("signalfd for SIGINT/SIGTERM/SIGUSR1");
  return fd;
}

const char* signal_name(int signo) { return signo == SIGINT ? "SIGINT" : "SIGTERM"; }

// How long SIGUSR1's ring report waits for the I/O loop to publish fresh
// ring state. The loop answers within one epoll round when it is healthy;
// seconds leave room for a loaded host or the nested sandbox's slow clock.
constexpr std::chrono::milliseconds kRingReportLoopWait{2000};

}  // namespace

StopSignals::StopSignals(RunState& state, std::function<void()> on_watcher_start)
    : signal_fd_(block_and_open_signalfd()), quit_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!quit_fd_) throw sys_error("eventfd for the signal watcher");
  watcher_ =
      std::jthread([this, &state, start = std::move(on_watcher_start)] { watch(state, start); });
}

StopSignals::~StopSignals() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(quit_fd_.get(), &one, sizeof(one));
}  // watcher_ joins first (declared last)

void StopSignals::watch(RunState& state, const std::function<void()>& on_watcher_start) {
  pthread_setname_np(pthread_self(), "minivmm-signal");
  try {
    if (on_watcher_start) on_watcher_start();
  } catch (const std::exception& e) {
    spdlog::error("signal watcher: {}", e.what());
    state.request_stop(exit_code::kInternal, e.what());
  }
  while (true) {
    pollfd fds[2] = {{quit_fd_.get(), POLLIN, 0}, {signal_fd_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("signal watcher: poll: {}", std::strerror(errno));
      return;
    }
    if (fds[0].revents) return;
    signalfd_siginfo info{};
    while (read(signal_fd_.get(), &info, sizeof(info)) == sizeof(info)) {
      on_signal(state, static_cast<int>(info.ssi_signo));
    }
  }
}

void StopSignals::on_signal(RunState& state, int signo) {
  if (signo == SIGUSR1) {
    // Each disk publishes a snapshot from its loop thread; reading it takes
    // that disk's mutex only (futex, write: allowed for the control thread).
    if (storage::log_registered_disk_stats() == 0) spdlog::info("SIGUSR1: no disks");
    // Then each virtio-blk queue's ring (ring_report.h): what the guest
    // published against what the device took and returned.
    for (const std::string& line : virtio::blk::registered_ring_state_lines(kRingReportLoopWait)) {
      spdlog::info("{}", line);
    }
    return;
  }
  const char* name = signal_name(signo);
  if (++received_ == 1) {
    spdlog::info("{} received: stopping the guest (send it again to force the exit)", name);
    state.request_stop(exit_code::kOk, std::string(name) + " received");
    return;
  }
  spdlog::warn(
      "second {} received: forcing the exit now, without waiting for disk requests in "
      "flight or the final flush (exit code {})",
      name, exit_code::kForcedStop);
  restore_terminal_now();
  _exit(exit_code::kForcedStop);
}

}  // namespace minivmm
